package socket

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// openPolling opens an Engine.IO v3 polling session for user and polls until
// connection_established; it returns the sid, the session's polling URL and the client.
func (ts *testServer) openPolling(t *testing.T, user string) (sid, poll string, client *http.Client) {
	t.Helper()
	client = &http.Client{Timeout: 10 * time.Second}
	base := ts.url + "/?EIO=3&transport=polling&token=" + user
	get := func(u string) string {
		t.Helper()
		res, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET: %d %q", res.StatusCode, b)
		}
		return string(b)
	}
	m := sidInOpen.FindStringSubmatch(get(base))
	if m == nil {
		t.Fatal("no sid")
	}
	sid = m[1]
	poll = base + "&sid=" + sid
	for !strings.Contains(get(poll), EventConnectionEstablished) {
	}
	return sid, poll, client
}

// The reviewer's case end to end: a client opens the websocket with its polling sid,
// sends the probe, never upgrades, and keeps POSTing large packets. The server holds a
// bounded amount, refuses the rest, keeps the session (the upgrade then delivers what it
// held, rate-checked) and serves everyone else.
func TestUpgradeThatNeverCompletesCannotQueueWithoutBound(t *testing.T) {
	// A rate that refills nothing within the test, so the tokens left show what was counted.
	ts := newTestServer(t, Options{MaxFrameBytes: 64 << 10, InboundRate: 0.001, InboundBurst: 200})
	sid, poll, client := ts.openPolling(t, "hog")

	// A long-poll is pending when the probe arrives: the library answers it with a NOOP
	// once it pauses polling, so its return tells the test that POSTs are handed off now.
	polled := make(chan string, 1)
	go func() {
		res, err := client.Get(poll)
		if err != nil {
			polled <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		polled <- string(b)
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.url, "http")+"/?EIO=3&transport=websocket&token=hog&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "3probe" {
		t.Fatalf("probe answer %q %v", msg, err)
	}
	if got := <-polled; !strings.HasSuffix(got, "6") {
		t.Fatalf("pending poll got %q, want a NOOP", got)
	}

	pkt := `427["big","` + strings.Repeat("x", 54<<10) + `"]` // asks for ack 7
	body := fmt.Sprintf("%d:%s", len(pkt), pkt)
	accepted, refused := 0, 0
	for range 100 {
		res, err := client.Post(poll, "text/plain;charset=UTF-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch res.StatusCode {
		case 200:
			if refused > 0 {
				t.Fatal("a POST was taken after the backlog was full and nothing was read")
			}
			accepted++
		case http.StatusRequestEntityTooLarge:
			if !strings.Contains(string(b), "upgrade_backlog_full") {
				t.Fatalf("refusal %q", b)
			}
			refused++
		default:
			t.Fatalf("POST: %d %q", res.StatusCode, b)
		}
	}
	if max := handoffFrames * (64 << 10) / len(pkt); accepted == 0 || accepted > max {
		t.Fatalf("%d POSTs of %d bytes held, want 1 to %d", accepted, len(pkt), max)
	}

	if left := ts.conn(t, "hog").inbound.Tokens(); left > float64(200-accepted)+0.5 {
		t.Fatalf("%d packets held but %.1f of 200 inbound tokens left: not counted against the rate", accepted, left)
	}

	ts.dialWS(t, "bystander") // others are served meanwhile

	// The upgrade completes: what was held arrives (each packet is acked, as it asked),
	// and the connection keeps serving.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after upgrading: %v", err)
		}
		if strings.HasPrefix(string(msg), "437[") {
			break
		}
	}
}
