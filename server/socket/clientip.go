package socket

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// clientIPParam carries a request's client address, as the HTTP layer resolved it
// (trusted proxies), in the request's URL. go-socket.io keeps the URL of the request that
// opened a session's transport and offers no other way from a request to its session,
// so this is how the address reaches the connection.
const clientIPParam = "jetsocket_client_ip"

// SetClientIP records ip as r's client address. Call it on every request to the
// Engine.IO endpoint, before the server sees it: it replaces any value the client sent.
// When ip is the TCP peer's (no trusted proxy in between) and the query cannot hold the
// parameter, the URL is left alone: ClientIP and sessionIP fall back to the peer, which
// is ip. A session keeps its request's URL for its life, and a re-encoded query is a
// second copy of it (the token included): about 450 B per idle connection (bench).
func SetClientIP(r *http.Request, ip string) {
	raw := r.URL.RawQuery
	// A key decoding to clientIPParam is either spelled out or escaped with '%'.
	if ip == peerHost(r.RemoteAddr) && !strings.Contains(raw, clientIPParam) && !strings.Contains(raw, "%") {
		return
	}
	q := r.URL.Query()
	q.Set(clientIPParam, ip)
	r.URL.RawQuery = q.Encode()
}

// ClientIP is r's client address: the one SetClientIP recorded, else the TCP peer's.
func ClientIP(r *http.Request) string {
	if ip := r.URL.Query().Get(clientIPParam); ip != "" {
		return ip
	}
	return peerHost(r.RemoteAddr)
}

// sessionIP is the client address of the request that opened a session's transport.
func sessionIP(u url.URL, peer net.Addr) string {
	if ip := u.Query().Get(clientIPParam); ip != "" {
		return ip
	}
	return remoteIP(peer)
}

func remoteIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	return peerHost(a.String())
}

func peerHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
