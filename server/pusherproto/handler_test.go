package pusherproto

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Serve returns once the connection is established and runs it on its own goroutine:
// a handler that stayed for the connection's life kept net/http's per-connection read and
// write buffers, the router's context and a deep stack alive for every idle connection
// (about 13 KB more per connection than the socket.io endpoint; BENCHMARKS.md, "Pusher
// endpoint"). The connection keeps working after the handler returned.
func TestServeReturnsWhileTheConnectionLives(t *testing.T) {
	e := newEnv(t)
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.svc.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/app/"), "127.0.0.1")
		returned <- struct{}{}
	}))
	defer srv.Close()
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/app/key?protocol=7"
	c := e.dial(t)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running with the connection open")
	}
	c.send(map[string]any{"event": EventPing, "data": map[string]any{}})
	if m := c.next(); m.Event != EventPong {
		t.Fatalf("after Serve returned: %+v, want %s", m, EventPong)
	}
}
