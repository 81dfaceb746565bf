package eio3

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
)

// fakePolling stands in for go-socket.io's polling conn: pausable, closable.
type fakePolling struct {
	closed atomic.Bool
	paused atomic.Bool
}

func (f *fakePolling) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	return 0, 0, nil, io.EOF
}
func (f *fakePolling) NextWriter(frame.Type, packet.Type) (io.WriteCloser, error) {
	return nil, io.EOF
}
func (f *fakePolling) Close() error                                 { f.closed.Store(true); return nil }
func (f *fakePolling) URL() url.URL                                 { return url.URL{} }
func (f *fakePolling) LocalAddr() net.Addr                          { return nil }
func (f *fakePolling) RemoteAddr() net.Addr                         { return nil }
func (f *fakePolling) RemoteHeader() http.Header                    { return nil }
func (f *fakePolling) SetReadDeadline(time.Time) error              { return nil }
func (f *fakePolling) SetWriteDeadline(time.Time) error             { return nil }
func (f *fakePolling) Pause()                                       { f.paused.Store(true) }
func (f *fakePolling) Resume()                                      { f.paused.Store(false) }
func (f *fakePolling) ServeHTTP(http.ResponseWriter, *http.Request) {}

// testLimits are roomy handoff limits for tests that are not about them.
var testLimits = handoffLimits{packets: 100, bytes: 1 << 20}

// The upgrade containment: go-socket.io closes the paused polling conn right after the
// upgrade; the close must wait so the session's read loop sees "paused", not EOF.
func TestGraceConnDelaysCloseOnlyWhilePaused(t *testing.T) {
	inner := &fakePolling{}
	c := &graceConn{Conn: inner, handoff: newHandoff(testLimits)}
	if _, ok := any(c).(pauser); !ok {
		t.Fatal("graceConn must be a pauser or the library refuses to upgrade")
	}
	if _, ok := any(c).(http.Handler); !ok {
		t.Fatal("graceConn must serve HTTP or polling stops")
	}
	c.Pause()
	if !inner.paused.Load() {
		t.Fatal("Pause not forwarded")
	}
	start := time.Now()
	_ = c.Close()
	_ = c.Close()
	if inner.closed.Load() {
		t.Fatal("paused conn closed at once")
	}
	for !inner.closed.Load() {
		if time.Since(start) > 5*upgradeGrace {
			t.Fatal("paused conn never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < upgradeGrace {
		t.Fatalf("closed after %v, want at least %v", d, upgradeGrace)
	}

	inner2 := &fakePolling{}
	c2 := &graceConn{Conn: inner2, handoff: newHandoff(testLimits)}
	c2.Pause()
	c2.Resume() // a failed upgrade resumes polling
	if inner2.paused.Load() {
		t.Fatal("Resume not forwarded")
	}
	_ = c2.Close()
	if !inner2.closed.Load() {
		t.Fatal("an unpaused conn must close at once")
	}
}

// The wrapper must sit in the transport list the server uses, polling first so that
// polling clients are offered the upgrade.
func TestTransportsOrder(t *testing.T) {
	ts := newTransports(nil, 1024, newHandoff(testLimits), nil, newUpgrades(nil), time.Minute)
	if len(ts) != 2 || ts[0].Name() != "polling" || ts[1].Name() != "websocket" {
		t.Fatalf("transports: %v", ts)
	}
	if _, ok := ts[0].(upgradeSafePolling); !ok {
		t.Fatalf("polling transport is %T, not the upgrade-safe wrapper", ts[0])
	}
}

func TestSessionIDsAreRandom(t *testing.T) {
	seen := map[string]bool{}
	g := newSessionIDs()
	for range 1000 {
		id := g.NewID()
		if len(id) < 22 || seen[id] {
			t.Fatalf("weak or repeated sid %q", id)
		}
		seen[id] = true
	}
}

// A POST that reaches a paused polling conn is decoded and handed to the websocket of
// the same session, which delivers it after the client's upgrade packet.
func TestPostDuringUpgradeIsHandedToTheWebsocket(t *testing.T) {
	h := newHandoff(testLimits)
	poll := &graceConn{Conn: &fakePolling{}, handoff: h, maxFrame: 1 << 10}
	poll.Pause()

	body := "6:2probe" + `15:42["x",{"a":1}]` // engine.io v3 text payload: a ping, then a message
	req := httptest.NewRequest(http.MethodPost, "/socket.io/?EIO=3&transport=polling&sid=S1", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	rec := httptest.NewRecorder()
	poll.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "ok" {
		t.Fatalf("POST while paused: %d %q", rec.Code, rec.Body)
	}

	ws := &handoffConn{Conn: &scriptedConn{packets: []handedPacket{
		{pt: packet.UPGRADE}, {pt: packet.MESSAGE, data: []byte(`2["after"]`)},
	}}, handoff: h, upgrades: newUpgrades(nil), sid: "S1"}
	var got []string
	for range 4 {
		_, pt, r, err := ws.NextReader()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		got = append(got, fmt.Sprintf("%d:%s", pt, b))
	}
	want := []string{"5:", "2:probe", `4:2["x",{"a":1}]`, `4:2["after"]`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("read order %q, want %q", got, want)
	}
	_ = ws.Close()
	if h.len() != 0 {
		t.Fatal("handoff not cleaned up")
	}
}

// A failed upgrade resumes polling, which then delivers what was handed off.
func TestHandedOffPacketsReturnToPollingIfUpgradeFails(t *testing.T) {
	h := newHandoff(testLimits)
	poll := &graceConn{Conn: &fakePolling{}, handoff: h, maxFrame: 1 << 10}
	poll.Pause()
	req := httptest.NewRequest(http.MethodPost, "/socket.io/?sid=S2", strings.NewReader(`7:42["y"]`))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	poll.ServeHTTP(httptest.NewRecorder(), req)
	// The library closes the websocket of a failed upgrade, then resumes polling: the
	// packets are the polling conn's to read, not the websocket's to drop.
	ws := &handoffConn{Conn: &fakePolling{}, handoff: h, upgrades: newUpgrades(nil), sid: "S2"}
	_ = ws.Close()
	poll.Resume()
	_, pt, r, err := poll.NextReader()
	if err != nil || pt != packet.MESSAGE {
		t.Fatalf("after resume: %v %v", pt, err)
	}
	if b, _ := io.ReadAll(r); string(b) != `2["y"]` {
		t.Fatalf("got %q", b)
	}
}

// scriptedConn returns a fixed list of packets.
type scriptedConn struct {
	fakePolling
	packets []handedPacket
}

func (s *scriptedConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	if len(s.packets) == 0 {
		return 0, 0, nil, io.EOF
	}
	p := s.packets[0]
	s.packets = s.packets[1:]
	return p.ft, p.pt, p.reader(), nil
}

// The library echoes every Engine.IO ping with io.Copy; a frame reader that cannot write
// itself out costs a 32 KiB buffer per ping.
func TestFrameReaderEchoesWithoutBigBuffers(t *testing.T) {
	payload := strings.Repeat("probe", 300) // larger than the pooled buffer: several rounds
	var out strings.Builder
	n, err := io.Copy(&out, frameReader{strings.NewReader(payload)})
	if err != nil || n != int64(len(payload)) || out.String() != payload {
		t.Fatalf("copied %d bytes, err %v; equal %v", n, err, out.String() == payload)
	}
	var sink bytes.Buffer
	sink.Grow(64)
	const rounds = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		sink.Reset()
		// A bare writer, like the frame writer the session echoes into (no ReadFrom).
		_, _ = io.Copy(struct{ io.Writer }{&sink}, frameReader{strings.NewReader("probe")})
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / rounds; per > 1024 {
		t.Fatalf("io.Copy of a ping allocates %d bytes per call, want under 1 KiB (no 32 KiB buffer)", per)
	}
}

// A sid that was handed out but whose session never arrives is swept, and a request for
// it does not wait forever.
func TestPendingSessionIDsAreBounded(t *testing.T) {
	g := newSessionIDs()
	id := g.NewID()
	done := make(chan struct{})
	close(done)
	start := time.Now()
	g.waitReady(id, done) // the request went away
	if time.Since(start) > time.Second {
		t.Fatal("waitReady ignored its request's end")
	}
	g.accepted(id)
	g.waitReady(id, nil) // accepted: returns at once

	old := g.NewID()
	g.mu.Lock()
	p := g.pending[old]
	p.since = time.Now().Add(-2 * pendingTTL)
	g.pending[old] = p
	g.lastSweep = time.Time{}
	g.mu.Unlock()
	g.NewID()
	g.mu.Lock()
	_, still := g.pending[old]
	n := len(g.pending)
	g.mu.Unlock()
	if still || n != 1 {
		t.Fatalf("stale sid kept (%v), %d pending", still, n)
	}
	select {
	case <-p.ready:
	default:
		t.Fatal("a waiter on the swept sid would wait for readyWait")
	}
}

// A new session's request reaches the library without its token once its claims are
// verified: the library keeps a substring of the query for the session's life.
func TestWithoutTokenDropsOnlyTheToken(t *testing.T) {
	r := httptest.NewRequest("GET", "/socket.io/?EIO=3&transport=websocket&token=aaa.bbb.ccc&extra=1", nil)
	got := withoutToken(r)
	q := got.URL.Query()
	if q.Has("token") || q.Get("EIO") != "3" || q.Get("transport") != "websocket" || q.Get("extra") != "1" {
		t.Fatalf("query %q", got.URL.RawQuery)
	}
	if !r.URL.Query().Has("token") {
		t.Fatal("the caller's request was changed")
	}
}
