package server

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawRequest sends head (request line and headers, without the blank line) and then
// nothing more, and returns the answer the server gives, waiting at most wait.
func rawRequest(t *testing.T, host, head string, wait time.Duration) (*http.Response, error) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(strings.ReplaceAll(head, "\n", "\r\n") + "\r\n")); err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	return http.ReadResponse(bufio.NewReader(conn), nil)
}

// A client that sends its headers and then no body is answered 408 once
// REQUEST_BODY_TIMEOUT has passed, on every route (one that never reads the body too:
// net/http drains it), instead of holding a connection and a goroutine for ever. The
// long-poll and websockets, which have no body, are not cut.
func TestBodiesMustArriveInTime(t *testing.T) {
	ts := startServer(t, map[string]string{"REQUEST_BODY_TIMEOUT": "1s"})
	token := ts.login(t, "bob", "bob123")
	ws, _, err := ts.dial(t, token)
	if err != nil {
		t.Fatal(err)
	}
	ws.established()

	heads := []string{
		"POST /login HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 60\n",
		"POST /apps/jetsocket/events?auth_key=k HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 60\n",
		"POST /login HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n",
		"POST /no-such-route HTTP/1.1\nHost: x\nContent-Length: 60\n",
		"GET /healthz HTTP/1.1\nHost: x\nContent-Length: 60\n",
		"POST /socket.io/?EIO=3&transport=polling&sid=abc HTTP/1.1\nHost: x\nContent-Type: text/plain\nContent-Length: 60\n",
	}
	errs := make(chan string, len(heads))
	for _, head := range heads {
		go func() {
			line := strings.SplitN(head, "\n", 2)[0]
			// Far beyond the timeout, so only a server that never answers fails.
			res, err := rawRequest(t, ts.host, head, 15*time.Second)
			switch {
			case err != nil:
				errs <- line + ": no answer: " + err.Error()
			case res.StatusCode != http.StatusRequestTimeout || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"):
				errs <- line + ": " + res.Status + " " + res.Header.Get("Content-Type")
			default:
				errs <- ""
			}
		}()
	}
	for range heads {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}

	// Everyone else is served, and the websocket opened before outlived the timeout.
	ts.login(t, "alice", "alice123")
	ws.send(`27["jetsocket:ping"]`)
	if p := ws.next(); !strings.HasPrefix(p, `37[{"pong":true`) {
		t.Fatalf("ping after the timeout: %q", p)
	}
}
