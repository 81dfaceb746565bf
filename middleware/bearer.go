package middleware

import (
	"log/slog"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

// Bearer checks "Authorization: Bearer <JWT>" with v, as Handshake checks a socket's
// token, and refuses a missing or invalid one with 401 {error:"invalid_token",
// message}. The claims go on the request's context (ClaimsOf).
func Bearer(v tokens.Verifier, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		// The scheme is case-insensitive (RFC 9110 §11.1): "BEARER x" is a Bearer token.
		scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer")
		var claims *tokens.Claims
		var err error
		if ok {
			claims, err = v.Verify(strings.TrimSpace(token))
		}
		if !ok || err != nil {
			msg := "an Authorization: Bearer <token> header is required"
			reason := "missing"
			if ok {
				msg, reason = "token invalid", string(tokens.ReasonOf(err))
				if te, isTE := err.(*tokens.Error); isTE {
					msg = te.Message()
				}
			}
			log.Warn("bearer token refused", "reason", reason, "path", c.Request.URL.Path, "ip", c.ClientIP())
			c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
			c.Abort()
			errs.Write(c.Writer, errs.New(errs.Unauthorized, errs.CodeInvalidToken, msg))
			return
		}
		c.Request = c.Request.WithContext(tokens.WithClaims(c.Request.Context(), claims))
		c.Next()
	}
}

// ClaimsOf returns the claims Bearer put on the request, or nil.
func ClaimsOf(c *gin.Context) *tokens.Claims {
	cl, _ := tokens.FromContext(c.Request.Context())
	return cl
}
