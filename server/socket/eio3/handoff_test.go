package eio3

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jetsocket/jetsocket/server/errs"
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
	if rec.Code != http.StatusTooManyRequests || jsonError(t, rec) != errs.CodeRateLimited {
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
