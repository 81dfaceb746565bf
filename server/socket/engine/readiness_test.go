package engine

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// echoServer serves websockets that wait with Readiness and echo each message; sizes
// gets the size of gorilla's read buffer each time Wait returns.
func echoServer(t *testing.T, sizes chan<- int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, rd, err := Upgrade(&websocket.Upgrader{}, w, r, nil, 512)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			if err := rd.Wait(); err != nil {
				return
			}
			if sizes != nil {
				select {
				case sizes <- rd.br.Size():
				default:
				}
			}
			for {
				mt, p, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if err := ws.WriteMessage(mt, p); err != nil {
					return
				}
				if !rd.Ready() {
					break
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// While a connection waits, its read buffer is back in the pool; when its client sends,
// it reads through a lent one.
func TestWaitReadsThroughALentBuffer(t *testing.T) {
	if !canPeek {
		t.Skip("no readiness wait on this system")
	}
	sizes := make(chan int, 1)
	c, _, err := websocket.DefaultDialer.Dial(echoServer(t, sizes), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "hello" {
			t.Fatalf("echo %q, %v", p, err)
		}
		if n := <-sizes; n != lentReadBuffer {
			t.Fatalf("read buffer after Wait: %d bytes, want a lent one of %d (Upgrade made 512)", n, lentReadBuffer)
		}
	}
}

// Connections that take turns with the pool's buffers read their own bytes only: small
// messages sent in one write, and messages larger than a buffer.
func TestLentBuffersKeepEachConnectionsBytes(t *testing.T) {
	url := echoServer(t, nil)
	const conns, rounds = 8, 30
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for r := 0; r < rounds; r++ {
				// Three messages in one TCP write, then one of 3 KiB.
				var burst bytes.Buffer
				want := []string{}
				for k := 0; k < 3; k++ {
					m := fmt.Sprintf("conn %d round %d message %d", i, r, k)
					want = append(want, m)
					burst.Write(clientFrame([]byte(m)))
				}
				big := strings.Repeat(fmt.Sprintf("%d-%d;", i, r), 3<<10/8)
				want = append(want, big)
				if _, err := c.UnderlyingConn().Write(burst.Bytes()); err != nil {
					errs <- err
					return
				}
				if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
					errs <- err
					return
				}
				for _, w := range want {
					if _, p, err := c.ReadMessage(); err != nil || string(p) != w {
						errs <- fmt.Errorf("conn %d round %d: got %.40q (%v), want %.40q", i, r, p, err, w)
						return
					}
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// clientFrame is p as one masked text frame, as a client sends it (mask all zero bytes,
// so the payload goes as is).
func clientFrame(p []byte) []byte {
	if len(p) > 125 {
		panic("short frames only")
	}
	return append([]byte{0x81, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
}
