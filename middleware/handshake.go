package middleware

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/tokens"
)

// Verifier checks a token.
type Verifier interface {
	Verify(token string) (*tokens.Claims, error)
}

// Handshake refuses a socket.io handshake whose token is missing or invalid with
// 401 {error:"invalid_token", message} before go-socket.io creates a session, and puts
// the claims in the request context otherwise. Only requests that open a session (no
// Engine.IO sid) are checked: the others belong to a session already authenticated, and
// its sid is 128 random bits.
func Handshake(v Verifier, onResult func(reason tokens.Reason), log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		q := c.Request.URL.Query()
		if c.Request.Method == http.MethodOptions || q.Get("sid") != "" {
			c.Next()
			return
		}
		claims, err := v.Verify(q.Get("token"))
		if err != nil {
			reason := tokens.ReasonOf(err)
			if onResult != nil {
				onResult(reason)
			}
			log.Warn("socket auth refused", "reason", string(reason), "ip", c.ClientIP(), "transport", q.Get("transport"))
			msg := "token invalid"
			if te, ok := err.(*tokens.Error); ok {
				msg = te.Message()
			}
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "invalid_token", "message": msg})
			return
		}
		if onResult != nil {
			onResult("")
		}
		log.Info("socket auth accepted", "user_id", claims.UserID(), "ip", c.ClientIP(), "transport", q.Get("transport"))
		c.Request = c.Request.WithContext(tokens.WithClaims(c.Request.Context(), claims))
		c.Next()
	}
}

// LimitBody caps request bodies (Engine.IO polling posts) at n bytes.
func LimitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, gin.H{"error": "too_large", "message": "request body too large"})
			return
		}
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}
