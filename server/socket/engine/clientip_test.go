package engine

import (
	"net/http/httptest"
	"testing"
)

func TestClientIPIsOursNotTheClients(t *testing.T) {
	// A client cannot name its own address: the query is not read.
	r := httptest.NewRequest("GET", "/socket.io/?EIO=3&token=t&jetsocket_client_ip=6.6.6.6", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	if got := ClientIP(r); got != "10.0.0.1" {
		t.Fatalf("ClientIP %q, want the TCP peer", got)
	}
	stamped := WithClientIP(r, "203.0.113.4")
	if got := ClientIP(stamped); got != "203.0.113.4" {
		t.Fatalf("stamped address read back as %q", got)
	}
	if stamped.URL.RawQuery != r.URL.RawQuery {
		t.Fatal("the query was rewritten")
	}
	// The peer's own address needs no stamp: the request is not copied.
	if WithClientIP(r, "10.0.0.1") != r {
		t.Fatal("request copied though the peer is the client")
	}
	bare := httptest.NewRequest("GET", "/socket.io/?EIO=3", nil)
	bare.RemoteAddr = "[2001:db8::1]:443"
	if ClientIP(bare) != "2001:db8::1" {
		t.Fatalf("fallback %q, want the TCP peer's host", ClientIP(bare))
	}
}
