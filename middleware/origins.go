package middleware

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
)

// Origins decides which browser origins may connect and call the API.
type Origins struct {
	allowed map[string]bool
	any     bool
}

// NewOrigins allows the given origins (scheme://host[:port], lower case), any origin
// when anyOrigin is set, and the server's own origin always.
func NewOrigins(allowed []string, anyOrigin bool) *Origins {
	o := &Origins{allowed: make(map[string]bool, len(allowed)), any: anyOrigin}
	for _, a := range allowed {
		o.allowed[strings.ToLower(a)] = true
	}
	return o
}

// Allowed reports whether r may proceed. Requests without an Origin header come from
// non-browser clients (backends, the Node client) and are not subject to it.
func (o *Origins) Allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || o.any {
		return true
	}
	origin = strings.ToLower(origin)
	if o.allowed[origin] {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// CORS refuses disallowed origins with 403 JSON, answers preflights, and adds the CORS
// headers for allowed cross-origin browser requests (Engine.IO polling sends cookies, so
// the origin is echoed rather than '*').
func (o *Origins) CORS() gin.HandlerFunc {
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if !o.Allowed(c.Request) {
			c.Abort()
			errs.Write(c.Writer, errs.New(errs.Forbidden, errs.CodeOriginNotAllowed, "origin "+truncate(origin, 100)+" is not allowed"))
			return
		}
		if origin != "" {
			h := c.Writer.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if c.Request.Method == http.MethodOptions {
			h := c.Writer.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
