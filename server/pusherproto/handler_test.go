package pusherproto

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/goroutinetest"
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

// Messages that arrive in one TCP write are all answered: what gorilla buffered after
// the first is read without waiting for the network (engine.Readiness.Ready).
func TestMessagesInOneWriteAreAllAnswered(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	ping := `{"event":"pusher:ping","data":{}}`
	var frames []byte
	for i := 0; i < 3; i++ {
		frames = append(frames, 0x81, 0x80|byte(len(ping)), 0, 0, 0, 0) // masked with a zero key
		frames = append(frames, ping...)
	}
	if _, err := c.ws.UnderlyingConn().Write(frames); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if m := c.next(); m.Event != EventPong {
			t.Fatalf("answer %d: %+v, want %s", i, m, EventPong)
		}
	}
}

// An idle connection has no goroutine: the service's poller waits for its client and a
// worker reads and handles when it sends. When the client leaves, the connection ends
// and nothing stays watched.
func TestIdleConnectionHasNoGoroutine(t *testing.T) {
	e := newEnv(t)
	if e.svc.poller == nil {
		t.Skip("no poller on this system")
	}
	c := e.dial(t)
	for i := 0; i < 3; i++ {
		c.send(map[string]any{"event": EventPing, "data": map[string]any{}})
		if m := c.next(); m.Event != EventPong {
			t.Fatalf("%+v, want %s", m, EventPong)
		}
	}
	goroutinetest.Eventually(t, "the connection watched", func() bool { return e.svc.poller.Watching() == 1 })
	goroutinetest.NoneIn(t, "pusherproto.(*Service).run", "pusherproto.(*Service).read", "gorilla/websocket.(*Conn).NextReader")
	_ = c.ws.Close()
	goroutinetest.Eventually(t, "the connection ended", func() bool { return e.svc.Count() == 0 && e.svc.poller.Watching() == 0 })
}

// A watched connection the server closes gets its close frame and ends; so does one
// the server drops (a slow consumer); and Shutdown ends the rest and returns.
func TestWatchedConnectionsClosedByTheServerEnd(t *testing.T) {
	e := newEnv(t)
	if e.svc.poller == nil {
		t.Skip("no poller on this system")
	}
	closed, dropped, kept := e.dial(t), e.dial(t), e.dial(t)
	goroutinetest.Eventually(t, "the connections watched", func() bool { return e.svc.poller.Watching() == 3 })
	conn := func(id string) *Conn {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		return e.svc.conns[id]
	}
	conn(closed.id).closeWith(CloseShuttingDown, ReasonShutdown, nil)
	_ = closed.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := closed.ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			if ce.Code != CloseShuttingDown {
				t.Fatalf("close %d, want %d", ce.Code, CloseShuttingDown)
			}
			break
		}
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
	}
	conn(dropped.id).abort(ReasonClientGone)
	goroutinetest.Eventually(t, "two ended", func() bool { return e.svc.Count() == 1 && e.svc.poller.Watching() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if e.svc.poller.Watching() != 0 || e.svc.Count() != 0 {
		t.Fatalf("after shutdown: %d watched, %d open", e.svc.poller.Watching(), e.svc.Count())
	}
	if code := kept.closeCode(); code != CloseShuttingDown {
		t.Fatalf("the connection left at shutdown closed with %d, want %d", code, CloseShuttingDown)
	}
}

// Over TLS the goroutine cannot wait on the socket (engine.ErrNoWait) and reads as it
// always did; messages are answered all the same.
func TestTLSConnectionsReadWithoutTheWait(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.svc.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/app/"), "127.0.0.1")
	}))
	defer srv.Close()
	d := websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https")+"/app/key?protocol=7", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := &client{t: t, ws: ws}
	if m := c.next(); m.Event != EventConnectionEstablished {
		t.Fatalf("%+v, want %s", m, EventConnectionEstablished)
	}
	for i := 0; i < 3; i++ {
		c.send(map[string]any{"event": EventPing, "data": map[string]any{}})
		if m := c.next(); m.Event != EventPong {
			t.Fatalf("ping %d: %+v, want %s", i, m, EventPong)
		}
	}
	if g := goroutinetest.In(t, "pusherproto.(*Service).read"); strings.Contains(g, "Readiness.Wait") {
		t.Fatalf("a TLS connection waits in Readiness.Wait:\n%s", g)
	}
}
