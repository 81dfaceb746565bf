// Package engine is what both Engine.IO engines (go-socket.io's, walled in eio3, and
// ours, eio4) share below the socket layer: the websocket connection the socket layer
// writes prebuilt frames to directly (WebSocket), and the client address the HTTP layer
// resolved for a request (WithClientIP, ClientIP). It imports neither engine nor the
// socket layer, so all three can import it.
package engine

import (
	"context"
	"net"
	"net/http"
)

type clientIPKey struct{}

// WithClientIP returns r carrying ip as its client address, as the HTTP layer resolved
// it (trusted proxies). Call it on every request to the Engine.IO endpoint before the
// server sees it. The value travels in the request's context, where a client cannot put
// it: when ip is the TCP peer's own address, r is returned as it is (ClientIP falls back
// to the peer), which spares the handshake a copy of the request.
func WithClientIP(r *http.Request, ip string) *http.Request {
	if ip == PeerHost(r.RemoteAddr) {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip))
}

// ClientIP is r's client address: the one WithClientIP recorded, else the TCP peer's.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	return PeerHost(r.RemoteAddr)
}

// PeerHost is the host part of a host:port address.
func PeerHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
