package middleware

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/apisig"
	"github.com/jetsocket/jetsocket/server/errs"
)

// APIAuth checks the Pusher HTTP API's request signature: the app id in the path, then
// the body (at most maxBody bytes, else 413), then apisig.Verify. The body is put back
// for the handler.
func APIAuth(appID, key, secret string, maxBody int64, now func() time.Time, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		fail := func(e *errs.Error) {
			log.Warn("api request refused", "path", c.Request.URL.Path, "ip", c.ClientIP(), "code", e.Code, "reason", e.Message)
			c.Abort()
			errs.Write(c.Writer, e)
		}
		if c.Param("app_id") != appID {
			fail(errs.New(errs.Forbidden, errs.CodeUnknownApp, "no app with this id"))
			return
		}
		var body []byte
		if c.Request.Body != nil {
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				fail(errs.New(errs.TooLarge, errs.CodeTooLarge, "request body too large"))
				return
			}
			if err != nil {
				fail(errs.New(errs.Invalid, errs.CodeInvalidRequest, "cannot read the body"))
				return
			}
		}
		if err := apisig.Verify(c.Request.Method, c.Request.URL.Path, c.Request.URL.Query(), body, key, secret, now()); err != nil {
			var e *errs.Error
			errors.As(err, &e)
			fail(e)
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		c.Next()
	}
}
