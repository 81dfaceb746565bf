package socket

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/goroutinetest"
)

// An idle v4 websocket connection has no goroutine: the server's poller waits for its
// client (Server.watch). A polling session's goroutine waits in WaitInput, not in a read
// (Server.serve): its stack stays small. The workers read and handle.

// clientFrames is text messages framed as a client sends them (masked, with a zero
// key), to be written in one TCP write.
func clientFrames(msgs ...string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteByte(0x81) // FIN, text
		b.WriteByte(0x80 | byte(len(m)))
		b.Write([]byte{0, 0, 0, 0})
		b.WriteString(m)
	}
	return b.Bytes()
}

// readWS reads messages until one contains want, failing after 5 s.
func readWS(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if strings.Contains(string(b), want) {
			return
		}
	}
}

// awaitClosed reads until the server closes ws, failing with msg after 5 s.
func awaitClosed(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal(msg)
			}
			return
		}
	}
}

// Packets that arrive together are all handled at once: what gorilla has buffered
// after the first is read without waiting for the network (Ready), which will not
// say so again.
func TestV5PacketsInOneWriteAreAllHandled(t *testing.T) {
	vs := newV5Server(t, Options{})
	ws := vs.dialV5(t, "pipelined")
	if _, err := ws.UnderlyingConn().Write(clientFrames(`421["a"]`, `422["b"]`, `423["c"]`)); err != nil {
		t.Fatal(err)
	}
	for _, ack := range []string{`431[`, `432[`, `433[`} {
		readWS(t, ws, ack)
	}
}

// After a packet the engine handles itself (a pong), the connection waits again, and
// the next event is handled when it comes.
func TestV5EventAfterPongsIsHandled(t *testing.T) {
	vs := newV5Server(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: 2 * time.Second})
	ws := vs.dialV5(t, "ponger")
	for i := 0; i < 3; i++ {
		readWS(t, ws, "2") // ping
		if err := ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`427["after"]`)); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, `437[`)
}

// A client that stops answering pings is still closed: the wait ends at the read
// deadline as a read would.
func TestV5SilentClientIsClosedWhileWaiting(t *testing.T) {
	vs := newV5Server(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond})
	ws := vs.dialV5(t, "silent")
	awaitClosed(t, ws, "the server never closed a client that stopped answering pings")
}

// An idle v4 websocket connection has no goroutine: the server's poller waits for its
// client, and a worker reads and handles when it sends.
func TestV5IdleConnectionHasNoGoroutine(t *testing.T) {
	vs := newV5Server(t, Options{})
	if vs.poller == nil {
		t.Skip("no poller on this system")
	}
	ws := vs.dialV5(t, "idle")
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`421["x"]`)); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, `431[`)
	goroutinetest.Eventually(t, "the connection watched", func() bool { return vs.poller.Watching() == 1 })
	goroutinetest.NoneIn(t, "socket.(*Server).serve", "socket.(*Server).run", "engine.(*WebSocket).WaitReadable", "gorilla/websocket.(*Conn).NextReader")
	// It still hears its client, again and again.
	for i := 2; i < 5; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`42%d["x"]`, i))); err != nil {
			t.Fatal(err)
		}
		readWS(t, ws, fmt.Sprintf(`43%d[`, i))
	}
	// The client leaves: the connection ends and nothing stays watched.
	_ = ws.Close()
	goroutinetest.Eventually(t, "the connection ended", func() bool { return vs.Count() == 0 && vs.poller.Watching() == 0 })
}

// A watched connection the server closes (here: the token refresh, a kick, shutdown
// alike) ends: the close cancels the watch and a worker cleans up.
func TestV5WatchedConnectionClosedByTheServerEnds(t *testing.T) {
	vs := newV5Server(t, Options{})
	if vs.poller == nil {
		t.Skip("no poller on this system")
	}
	ws := vs.dialV5(t, "kicked")
	goroutinetest.Eventually(t, "the connection watched", func() bool { return vs.poller.Watching() == 1 })
	vs.mu.Lock()
	c := vs.conns["kicked"]
	vs.mu.Unlock()
	c.Close("test")
	goroutinetest.Eventually(t, "the connection ended", func() bool { return vs.Count() == 0 && vs.poller.Watching() == 0 })
	awaitClosed(t, ws, "the client was never closed")
}

// Shutdown ends watched connections and returns.
func TestV5ShutdownEndsWatchedConnections(t *testing.T) {
	vs := newV5Server(t, Options{})
	if vs.poller == nil {
		t.Skip("no poller on this system")
	}
	for i := 0; i < 5; i++ {
		vs.dialV5(t, fmt.Sprintf("u%d", i))
	}
	goroutinetest.Eventually(t, "the connections watched", func() bool { return vs.poller.Watching() == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := vs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := vs.poller.Watching(); n != 0 {
		t.Fatalf("%d still watched after shutdown", n)
	}
}

// A socket.io-client 2.x connection that opened on a websocket has no goroutine while it
// is idle either: its pings are answered by our transport (eio3's wsConn.ownPings), so a
// worker reads one frame and returns to the poller. It keeps answering pings and events.
func TestV4ProtocolIdleWebsocketHasNoGoroutine(t *testing.T) {
	ts := newTestServer(t, Options{})
	if ts.poller == nil {
		t.Skip("no poller on this system")
	}
	ws := ts.dialWS(t, "idle2")
	goroutinetest.Eventually(t, "the connection watched", func() bool { return ts.poller.Watching() == 1 })
	for i := 0; i < 3; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("2")); err != nil {
			t.Fatal(err)
		}
		readWS(t, ws, "3")
		if err := ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`42%d["x"]`, i))); err != nil {
			t.Fatal(err)
		}
		readWS(t, ws, fmt.Sprintf(`43%d`, i))
	}
	// Last a ping: the library would answer it and wait, on the worker, for the next frame.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2")); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, "3")
	goroutinetest.NoneIn(t, "socket.(*Server).serve", "socket.(*Server).run", "socket.(*Server).readLoop", "gorilla/websocket.(*Conn).NextReader")
	_ = ws.Close()
	goroutinetest.Eventually(t, "the connection ended", func() bool { return ts.Count() == 0 && ts.poller.Watching() == 0 })
}

// A 2.x client on a websocket that stops pinging is closed after pingInterval +
// pingTimeout, though no read waits for it; one that keeps pinging is not.
func TestV4ProtocolSilentWebsocketClientIsClosed(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	silent := ts.dialWS(t, "silent2")
	pinging := ts.dialWS(t, "pinging2")
	var wmu sync.Mutex // gorilla takes one writer at a time
	write := func(m string) error {
		wmu.Lock()
		defer wmu.Unlock()
		return pinging.WriteMessage(websocket.TextMessage, []byte(m))
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_ = write("2")
			}
		}
	}()
	awaitClosed(t, silent, "the server never closed a client that stopped pinging")
	time.Sleep(500 * time.Millisecond) // past the deadline more than twice
	if err := write(`427["x"]`); err != nil {
		t.Fatal(err)
	}
	readWS(t, pinging, `437`)
}

// A 2.x session that starts on polling and upgrades, as socket.io-client 2.x does by
// default, goes to the poller at its first ping on the websocket: its goroutine, parked
// in the library's read loop until then, ends.
func TestV4ProtocolUpgradedSessionGoesToThePoller(t *testing.T) {
	ts := newTestServer(t, Options{})
	if ts.poller == nil {
		t.Skip("no poller on this system")
	}
	sid, _, _ := ts.openPolling(t, "upgrader")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.url, "http")+"/?EIO=3&transport=websocket&token=upgrader&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, "3probe")
	if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`421["x"]`)); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, `431`)
	if n := ts.poller.Watching(); n != 0 {
		t.Fatalf("watched before its first ping on the websocket: %d", n)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2")); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, "3")
	goroutinetest.Eventually(t, "the upgraded connection watched", func() bool { return ts.poller.Watching() == 1 })
	goroutinetest.NoneIn(t, "socket.(*Server).readLoop", "socket.(*Server).run")
	for i := 2; i < 4; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`42%d["x"]`, i))); err != nil {
			t.Fatal(err)
		}
		readWS(t, ws, fmt.Sprintf(`43%d`, i))
		if err := ws.WriteMessage(websocket.TextMessage, []byte("2")); err != nil {
			t.Fatal(err)
		}
		readWS(t, ws, "3")
	}
	_ = ws.Close()
	goroutinetest.Eventually(t, "the connection ended", func() bool { return ts.Count() == 0 && ts.poller.Watching() == 0 })
}
