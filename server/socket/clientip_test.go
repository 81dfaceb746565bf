package socket

import (
	"net"
	"net/http/httptest"
	"testing"
)

func TestClientIPIsOursNotTheClients(t *testing.T) {
	r := httptest.NewRequest("GET", "/socket.io/?EIO=3&token=t&"+clientIPParam+"=6.6.6.6&"+clientIPParam+"=7.7.7.7", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	SetClientIP(r, "203.0.113.4")
	if got := r.URL.Query()[clientIPParam]; len(got) != 1 || got[0] != "203.0.113.4" {
		t.Fatalf("stamped %v", got)
	}
	if ClientIP(r) != "203.0.113.4" || sessionIP(*r.URL, nil) != "203.0.113.4" {
		t.Fatal("stamped address not read back")
	}
	if r.URL.Query().Get("token") != "t" {
		t.Fatal("other parameters lost")
	}
	// The peer's own address needs no stamp, unless the client sent the parameter, in
	// any spelling the query decodes to it.
	for _, query := range []string{"EIO=3&token=t", "EIO=3&" + clientIPParam + "=6.6.6.6", "EIO=3&jetsocket%5Fclient%5Fip=6.6.6.6", "EIO=3&%6Aetsocket_client_ip=6.6.6.6"} {
		r := httptest.NewRequest("GET", "/socket.io/?"+query, nil)
		r.RemoteAddr = "10.0.0.1:5555"
		SetClientIP(r, "10.0.0.1")
		peer := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5555}
		if ClientIP(r) != "10.0.0.1" || sessionIP(*r.URL, peer) != "10.0.0.1" {
			t.Fatalf("%s: ClientIP %q, sessionIP %q, want the peer 10.0.0.1", query, ClientIP(r), sessionIP(*r.URL, peer))
		}
		if query == "EIO=3&token=t" && r.URL.RawQuery != query {
			t.Fatalf("query rewritten to %q though the peer is the client", r.URL.RawQuery)
		}
	}
	bare := httptest.NewRequest("GET", "/socket.io/?EIO=3", nil)
	bare.RemoteAddr = "10.0.0.1:5555"
	if ClientIP(bare) != "10.0.0.1" {
		t.Fatalf("fallback %q, want the TCP peer", ClientIP(bare))
	}
}
