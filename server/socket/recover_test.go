package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/tokens"
)

// lockedBuffer is a log sink the server's goroutines may write to concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A panic in the event handler or in the connect or disconnect hook is logged with its
// stack and ends at most its event (answered 500) or its connection: the process and
// the other connections go on.
func TestCallbackPanicsAreRecovered(t *testing.T) {
	var logs lockedBuffer
	disconnected := make(chan string, 10)
	s, err := NewServer(Options{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Authenticate: func(token string) (*tokens.Claims, error) {
			return &tokens.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: token}}, nil
		},
		Handler: func(_ *Conn, event string, _ []json.RawMessage) any {
			if event == "boom" {
				panic("handler exploded")
			}
			return map[string]bool{"ok": true}
		},
		OnConnect: func(c *Conn) {
			if c.UserID() == "bad-connect" {
				panic("connect hook exploded")
			}
		},
		OnDisconnect: func(c *Conn, _ string) {
			disconnected <- c.UserID()
			panic("disconnect hook exploded")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		hs.Close()
	})
	ts := &testServer{Server: s, url: hs.URL}

	ws := ts.dialWS(t, "alice")
	read := func(ws *websocket.Conn, prefix string) string {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(string(msg), prefix) {
				return string(msg)
			}
		}
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`421["boom",{}]`)); err != nil {
		t.Fatal(err)
	}
	errEvent := read(ws, `42["jetsocket:error"`)
	if !strings.Contains(errEvent, `"internal_error"`) {
		t.Fatalf("error event %s", errEvent)
	}
	ack := read(ws, `431`)
	if !strings.Contains(ack, `"status":500`) || !strings.Contains(ack, `"ok":false`) || strings.Contains(ack, "exploded") {
		t.Fatalf("ack %s: want a 500 refusal without the panic's text", ack)
	}
	// The connection goes on.
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`422["fine"]`))
	if got := read(ws, `432`); got != `432[{"ok":true}]` {
		t.Fatalf("ack after the panic: %s", got)
	}

	// A panicking connect hook ends its connection, not the process.
	bad, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/?EIO=3&transport=websocket&token=bad-connect", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	read(bad, `42["jetsocket:error"`)
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := bad.ReadMessage(); err != nil {
			break // closed
		}
	}
	if who := <-disconnected; who != "bad-connect" {
		t.Fatalf("disconnect hook ran for %s", who)
	}

	// A panicking disconnect hook: the server still serves alice and new connections.
	ts.dialWS(t, "bob").Close()
	if who := <-disconnected; who != "bob" {
		t.Fatalf("disconnect hook ran for %s", who)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`423["fine"]`))
	read(ws, `433`)

	for _, what := range []string{"handler exploded", "connect hook exploded", "disconnect hook exploded"} {
		if !strings.Contains(logs.String(), what) {
			t.Errorf("%q not logged", what)
		}
	}
	if !strings.Contains(logs.String(), `"stack":"goroutine `) {
		t.Error("no stack logged")
	}
}
