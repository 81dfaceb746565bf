// Package middleware is the Gin glue around tokens and the socket server: request logs,
// panics, origins and CORS, and the socket.io handshake's token check.
package middleware

import (
	"log/slog"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
)

// RequestLog logs one line per request. It logs the path without the query string: the
// socket.io handshake carries the token there, and gin's default logger would print it.
// Engine.IO polling requests (one per long-poll) are logged at debug level.
func RequestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		level := slog.LevelInfo
		if strings.HasPrefix(c.Request.URL.Path, "/socket.io/") && c.Writer.Status() < 400 {
			level = slog.LevelDebug
		}
		log.LogAttrs(c.Request.Context(), level, "http request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", time.Since(start)),
			slog.String("ip", c.ClientIP()),
			slog.Int("bytes", c.Writer.Size()),
		)
	}
}

// Recover turns a panic in a handler into a 500 JSON answer and an error log line.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(discard{}, func(c *gin.Context, recovered any) {
		log.Error("panic in handler", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", recovered)
		c.Abort()
		errs.Write(c.Writer, errs.New(errs.Internal, errs.CodeInternal, "internal server error"))
	})
}

// discard keeps gin's recovery from printing the request (and its token) to stderr.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
