package socket

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/goroutinetest"
)

// A v4 websocket connection's goroutine waits for its client in WaitReadable, not in
// gorilla's read (Server.serve): its stack stays small. The workers read and handle.

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
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the server never closed a client that stopped answering pings")
			}
			return
		}
	}
}

func TestV5IdleConnectionWaitsOutsideTheRead(t *testing.T) {
	vs := newV5Server(t, Options{})
	ws := vs.dialV5(t, "idle")
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`421["x"]`)); err != nil {
		t.Fatal(err)
	}
	readWS(t, ws, `431[`)
	var stack string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stack = goroutinetest.In(t, "socket.(*Server).serve")
		if strings.Contains(stack, "WaitReadable") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stack, "engine.(*WebSocket).WaitReadable") || strings.Contains(stack, "gorilla/websocket") {
		t.Fatalf("the idle connection's goroutine is not waiting in WaitReadable:\n%s", stack)
	}
}
