package handlers

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
)

// Abort answers the request with err (errs.Write) and stops the handler chain. Errors
// that are not *errs.Error are internal: logged with their detail, answered with a
// generic message.
func Abort(c *gin.Context, log *slog.Logger, err error) {
	e := errs.From(err)
	if e.Kind == errs.Internal {
		log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	c.Abort()
	errs.Write(c.Writer, e)
}
