package socket

import (
	"net/http"

	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/tokens"
)

// WithClientIP returns r carrying ip as its client address, as the HTTP layer resolved
// it (trusted proxies): the engines give it to their sessions (Session.ClientIP). Call it
// on every request to the Engine.IO endpoint, before the server sees it.
func WithClientIP(r *http.Request, ip string) *http.Request { return engine.WithClientIP(r, ip) }

// ClientIP is r's client address: the one WithClientIP recorded, else the TCP peer's.
func ClientIP(r *http.Request) string { return engine.ClientIP(r) }

// WithVerified returns r carrying the claims the HTTP layer verified from its query token
// (engine.WithVerified): a v3 session takes them instead of verifying the token again.
func WithVerified(r *http.Request, claims *tokens.Claims) *http.Request {
	return engine.WithVerified(r, claims)
}
