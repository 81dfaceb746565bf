package middleware

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
)

// ReadBody reads a request's body in full before any handler runs, within timeout and
// at most max bytes, and hands the handlers the bytes read.
//
// Without it a client that sends its headers and then nothing holds a connection and a
// goroutine for ever: handlers wait in their read, and even a route that never reads the
// body waits, because net/http drains an unread body before it answers. The deadline is
// set per request, only while its body is read, and only on requests that have one (the
// long-poll GET and the websocket upgrade have none). http.Server.ReadTimeout would bound
// bodies too (net/http lifts the deadline once a body is read, so long-polls and
// websockets would survive it), but a body cut off by it surfaces as whatever each
// handler makes of a failed read, or as a silent close; here every route answers the
// same clear error.
//
// Slower than timeout: 408 request_timeout. Over max: 413 too_large. Either way the
// connection closes after the answer. Each route still applies its own, smaller limit.
func ReadBody(max int64, timeout time.Duration, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if r.Body == nil || r.Body == http.NoBody {
			c.Next()
			return
		}
		fail := func(e *errs.Error) {
			log.Warn("request body refused", "method", r.Method, "path", r.URL.Path, "ip", c.ClientIP(), "code", e.Code)
			c.Header("Connection", "close")
			c.Abort()
			errs.Write(c.Writer, e)
		}
		if r.ContentLength > max {
			fail(errs.New(errs.TooLarge, errs.CodeTooLarge, "request body too large"))
			return
		}
		rc := http.NewResponseController(c.Writer)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			fail(errs.New(errs.Invalid, errs.CodeInvalidRequest, "cannot read the body"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, max))
		// On failure the deadline stays: net/http's own drain of the rest then ends too.
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			fail(errs.New(errs.TooLarge, errs.CodeTooLarge, "request body too large"))
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			fail(errs.New(errs.Timeout, errs.CodeRequestTimeout, "the request body did not arrive in time"))
			return
		case err != nil:
			fail(errs.New(errs.Invalid, errs.CodeInvalidRequest, "cannot read the body"))
			return
		}
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.Next()
	}
}
