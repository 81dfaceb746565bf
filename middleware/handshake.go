package middleware

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/tokens"
)

// HandshakeOptions configure Handshake.
type HandshakeOptions struct {
	Verifier tokens.Verifier
	// OnRefused, if set, is told why a token was refused.
	OnRefused func(reason tokens.Reason)
	// Admit, if set, may refuse a valid token (connection limits) of a client at ip (as
	// gin resolved it: TRUSTED_PROXIES); an *errs.Error is answered as it is.
	Admit func(claims *tokens.Claims, ip string) error
	// Accepted, if set, returns the request to pass on with the accepted token's claims
	// (socket.WithVerified), so that the session need not verify the token again.
	Accepted func(r *http.Request, claims *tokens.Claims) *http.Request
	Log      *slog.Logger
}

// Handshake refuses a socket.io handshake whose token is missing or invalid with
// 401 {error:"invalid_token", message} before go-socket.io creates a session; the
// claims go on with the request (Accepted). Only requests that open a session (no
// Engine.IO sid) are checked, and an Engine.IO v4 one only when its query has a token: the others belong to a session already authenticated, and
// its sid is 128 random bits.
func Handshake(o HandshakeOptions) gin.HandlerFunc {
	v, log := o.Verifier, o.Log
	onResult := o.OnRefused
	return func(c *gin.Context) {
		q := c.Request.URL.RawQuery // read with query, not parsed whole at each look
		if c.Request.Method == http.MethodOptions || query.Get(q, "sid") != "" {
			c.Next()
			return
		}
		// No or an unknown Engine.IO version: the socket layer refuses it 400 (as
		// engine.io does), whatever the token.
		eio := query.Get(q, "EIO")
		if eio != "3" && eio != "4" {
			c.Next()
			return
		}
		// A socket.io-client 3.x/4.x handshake (EIO=4) may carry its token in the
		// CONNECT packet's auth instead; the socket layer checks it there, with the same
		// verifier and limits. One given in the query is checked here, as for 2.x.
		if eio == "4" && !query.Has(q, "token") {
			c.Next()
			return
		}
		claims, err := v.Verify(query.Get(q, "token"))
		if err != nil {
			reason := tokens.ReasonOf(err)
			if onResult != nil {
				onResult(reason)
			}
			log.Warn("socket auth refused", "reason", string(reason), "ip", c.ClientIP(), "transport", query.Get(q, "transport"))
			msg := "token invalid"
			if te, ok := err.(*tokens.Error); ok {
				msg = te.Message()
			}
			c.Abort()
			errs.Write(c.Writer, errs.New(errs.Unauthorized, errs.CodeInvalidToken, msg))
			return
		}
		ip := c.ClientIP()
		if o.Admit != nil {
			if err := o.Admit(claims, ip); err != nil {
				e := errs.From(err)
				log.Warn("socket refused", "reason", e.Code, "user_id", claims.UserID(), "ip", ip)
				c.Abort()
				errs.Write(c.Writer, e)
				return
			}
		}
		if log.Enabled(c.Request.Context(), slog.LevelInfo) { // spares a connect its fields at LOG_LEVEL=warn
			log.Info("socket auth accepted", "user_id", claims.UserID(), "ip", ip, "transport", query.Get(q, "transport"))
		}
		if o.Accepted != nil {
			c.Request = o.Accepted(c.Request, claims)
		}
		c.Next()
	}
}

// LimitBody caps request bodies (Engine.IO polling posts) at n bytes.
func LimitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			c.Abort()
			errs.Write(c.Writer, errs.New(errs.TooLarge, errs.CodeTooLarge, "request body too large"))
			return
		}
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}
