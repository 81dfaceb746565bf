package socket

import (
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
	bare := httptest.NewRequest("GET", "/socket.io/?EIO=3", nil)
	bare.RemoteAddr = "10.0.0.1:5555"
	if ClientIP(bare) != "10.0.0.1" {
		t.Fatalf("fallback %q, want the TCP peer", ClientIP(bare))
	}
}
