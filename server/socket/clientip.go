package socket

import (
	"net"
	"net/http"
	"net/url"
)

// clientIPParam carries a request's client address, as the HTTP layer resolved it
// (trusted proxies), in the request's URL. go-socket.io keeps the URL of the request that
// opened a session's transport and offers no other way from a request to its session,
// so this is how the address reaches the connection.
const clientIPParam = "jetsocket_client_ip"

// SetClientIP records ip as r's client address. Call it on every request to the
// Engine.IO endpoint, before the server sees it: it replaces any value the client sent.
func SetClientIP(r *http.Request, ip string) {
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
