package engine

import (
	"context"
	"net/http"

	"github.com/jetsocket/jetsocket/tokens"
)

type verifiedKey struct{}

// WithVerified returns r carrying the claims the HTTP layer verified from r's query
// token, so the engine hands them to the socket layer with the session instead of the
// token, which is then not verified a second time (a JWT parse is the largest single
// cost of a socket.io-client 2.x connect) and not kept for the session's life. Like
// WithClientIP, the value travels in the request's context, where a client cannot put it.
func WithVerified(r *http.Request, claims *tokens.Claims) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), verifiedKey{}, claims))
}

// Verified is the claims WithVerified recorded on r, or nil.
func Verified(r *http.Request) *tokens.Claims {
	c, _ := r.Context().Value(verifiedKey{}).(*tokens.Claims)
	return c
}
