package handlers

import (
	"errors"
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
)

// Abort answers the request with err and stops the handler chain. Errors that are not
// *Error are internal: logged with their detail, answered with a generic message.
func Abort(c *gin.Context, log *slog.Logger, err error) {
	var e *errs.Error
	if !errors.As(err, &e) {
		e = &errs.Error{Kind: errs.Internal, Code: "internal_error", Message: "internal server error", Err: err}
	}
	if e.Kind == errs.Internal {
		log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	c.AbortWithStatusJSON(e.Kind.Status(), errs.Body{Error: e.Code, Message: e.Message})
}
