package socket

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// postPaused POSTs an Engine.IO v3 text payload to a paused polling conn.
func postPaused(t *testing.T, poll *graceConn, sid string, packets ...string) *httptest.ResponseRecorder {
	t.Helper()
	var body strings.Builder
	for _, p := range packets {
		fmt.Fprintf(&body, "%d:%s", len(p), p)
	}
	req := httptest.NewRequest(http.MethodPost, "/socket.io/?EIO=3&transport=polling&sid="+sid, strings.NewReader(body.String()))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	rec := httptest.NewRecorder()
	poll.ServeHTTP(rec, req)
	return rec
}

func jsonError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Error, Message string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
		t.Fatalf("refusal is not {error, message}: %d %q", rec.Code, rec.Body)
	}
	return e.Error
}

// What a session may have posted during its upgrade and not yet read is bounded in
// packets and in bytes; beyond, a POST is refused whole with a clear error and nothing
// of it is kept.
func TestHandoffIsBounded(t *testing.T) {
	h := newHandoff(handoffLimits{packets: 5, bytes: 1000})
	poll := &graceConn{Conn: &fakePolling{}, handoff: h, maxFrame: 1 << 10}
	poll.Pause()

	for i := range 5 {
		if rec := postPaused(t, poll, "S", fmt.Sprintf(`42["e",%d]`, i)); rec.Code != 200 {
			t.Fatalf("packet %d within the bound: %d %q", i, rec.Code, rec.Body)
		}
	}
	rec := postPaused(t, poll, "S", `42["e",5]`)
	if rec.Code != http.StatusRequestEntityTooLarge || jsonError(t, rec) != "upgrade_backlog_full" {
		t.Fatalf("sixth packet: %d %q", rec.Code, rec.Body)
	}
	if q := h.m["S"]; len(q.ps) != 5 {
		t.Fatalf("%d packets queued, want 5", len(q.ps))
	}

	// Bytes: one packet of 600, then one of 600 more is refused; another session is not
	// affected by the first one's backlog.
	poll2 := &graceConn{Conn: &fakePolling{}, handoff: h, maxFrame: 1 << 10}
	poll2.Pause()
	big := `42["e","` + strings.Repeat("x", 590) + `"]`
	if rec := postPaused(t, poll2, "T", big); rec.Code != 200 {
		t.Fatalf("first big packet: %d %q", rec.Code, rec.Body)
	}
	if rec := postPaused(t, poll2, "T", big); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("bytes over the bound: %d %q", rec.Code, rec.Body)
	}
	if q := h.m["T"]; len(q.ps) != 1 || q.bytes != len(big)-1 {
		t.Fatalf("session T holds %d packets, %d bytes", len(q.ps), q.bytes)
	}

	// Reading frees room again.
	if _, ok := h.pop("S"); !ok {
		t.Fatal("nothing to pop")
	}
	if rec := postPaused(t, poll, "S", `42["e",6]`); rec.Code != 200 {
		t.Fatalf("after a read: %d %q", rec.Code, rec.Body)
	}
}

// Packets posted during an upgrade count against the connection's inbound rate limit
// when they are posted; over it the POST is refused with 429 rate_limited.
func TestHandoffCountsAgainstTheInboundRate(t *testing.T) {
	budget := 3
	var charged []int
	h := newHandoff(handoffLimits{packets: 100, bytes: 1 << 20, charge: func(sid string, n int) bool {
		charged = append(charged, n)
		if n > budget {
			return false
		}
		budget -= n
		return true
	}})
	poll := &graceConn{Conn: &fakePolling{}, handoff: h, maxFrame: 1 << 10}
	poll.Pause()
	if rec := postPaused(t, poll, "S", `42["a"]`, `42["b"]`); rec.Code != 200 {
		t.Fatalf("within the rate: %d %q", rec.Code, rec.Body)
	}
	rec := postPaused(t, poll, "S", `42["c"]`, `42["d"]`)
	if rec.Code != http.StatusTooManyRequests || jsonError(t, rec) != CodeRateLimited {
		t.Fatalf("over the rate: %d %q", rec.Code, rec.Body)
	}
	if fmt.Sprint(charged) != "[2 2]" {
		t.Fatalf("charged %v, want every posted packet counted", charged)
	}
	if q := h.m["S"]; len(q.ps) != 2 {
		t.Fatalf("%d packets queued, want the 2 allowed", len(q.ps))
	}
	// What was charged on posting is not charged again on reading.
	p, _ := h.pop("S")
	if _, ok := p.reader().(handedReader); !ok {
		t.Fatal("a handed packet's reader is not recognisable by the read loop")
	}
}

// A session closed while its upgrade was pending (the library closes the paused polling
// conn, the websocket never upgraded, then polling is resumed) leaves nothing behind.
func TestHandoffDroppedWhenTheSessionEndsDuringTheUpgrade(t *testing.T) {
	h := newHandoff(testLimits)
	poll := &graceConn{Conn: &fakePolling{}, handoff: h, maxFrame: 1 << 10}
	poll.Pause()
	if rec := postPaused(t, poll, "S", `42["x"]`); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	_ = poll.Close()
	ws := &handoffConn{Conn: &fakePolling{}, handoff: h, upgrades: newUpgrades(nil), sid: "S"}
	_ = ws.Close()
	poll.Resume()
	if h.len() != 0 {
		t.Fatal("handed-off packets of a closed session kept")
	}
}

// The reviewer's case end to end: a client opens the websocket with its polling sid,
// sends the probe, never upgrades, and keeps POSTing large packets. The server holds a
// bounded amount, refuses the rest, keeps the session (the upgrade then delivers what it
// held, rate-checked) and serves everyone else.
func TestUpgradeThatNeverCompletesCannotQueueWithoutBound(t *testing.T) {
	// A rate that refills nothing within the test, so the tokens left show what was counted.
	ts := newTestServer(t, Options{MaxFrameBytes: 64 << 10, InboundRate: 0.001, InboundBurst: 200})
	client := &http.Client{Timeout: 10 * time.Second}
	base := ts.url + "/?EIO=3&transport=polling&token=hog"
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
	sid := m[1]
	poll := base + "&sid=" + sid
	for !strings.Contains(get(poll), EventConnectionEstablished) {
	}

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
