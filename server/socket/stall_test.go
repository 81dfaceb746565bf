package socket

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/wire"
)

// connectV4Polling opens a v4 polling session and connects it as user.
func (vs *v5Server) connectV4Polling(t *testing.T, user string) (*poller, *Conn) {
	t.Helper()
	p := openV4Polling(t, vs.url, "")
	if code := p.post(`40{"token":"` + vs.token(t, user) + `"}`); code != 200 {
		t.Fatalf("connect post: %d", code)
	}
	p.next(2) // CONNECT's answer, connection_established
	vs.mu.Lock()
	c := vs.conns[user]
	vs.mu.Unlock()
	if c == nil {
		t.Fatalf("no connection for %s", user)
	}
	return p, c
}

// sid is a poller's Engine.IO session id.
func (p *poller) sid() string { return p.url[strings.LastIndex(p.url, "sid=")+4:] }

// frozenDialer's connections have a small fixed receive buffer (no autotuning, which
// takes tens of MB on loopback): a client that stops reading fills it soon.
var frozenDialer = &websocket.Dialer{
	NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
		return c, nil
	},
}

// A v4 client stops polling while a backlog builds up, then upgrades to a websocket it
// never reads. Writing that backlog must not hold up anyone: sends to the connection
// return at once (they used to wait for the session lock, held by the upgrade across
// its writes, 60 s each), and it is closed as a slow consumer.
func TestV4FrozenUpgradeDoesNotHoldUpSenders(t *testing.T) {
	vs := newV5Server(t, Options{SendQueue: 256})
	p, c := vs.connectV4Polling(t, "frozen")
	big := wire.NewFrame([]byte(`2["e","` + strings.Repeat("y", 100_000) + `"]`))
	for i := 0; i < 150; i++ { // 15 MB: beyond what the kernel buffers take
		if !c.SendFrame(big) {
			t.Fatal("backlog refused")
		}
	}
	// Wait until the backlog is in the engine's poll queue, not the connection's.
	for {
		c.mu.Lock()
		idle := !c.writing && len(c.queue) == 0
		c.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ws, _, err := frozenDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+p.sid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	readUntil(t, ws, "3probe")
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	// The first bytes of the backlog prove the upgrade is writing it; then the client
	// reads no more.
	if _, r, err := ws.NextReader(); err != nil {
		t.Fatal(err)
	} else if _, err := io.ReadFull(r, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	go func() {
		for i := 0; i < 10_000 && c.SendFrame(big); i++ {
		}
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the sender was held up by a frozen upgrade")
	}
	select {
	case <-c.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("frozen consumer not closed")
	}
	if r := c.closeReason(); r != ReasonSlowConsumer {
		t.Fatalf("closed for %q, want %q", r, ReasonSlowConsumer)
	}
}

// A v4 polling client that stops polling is a slow consumer too.
func TestV4PollingClientThatStopsPollingIsASlowConsumer(t *testing.T) {
	vs := newV5Server(t, Options{SendQueue: 16})
	_, c := vs.connectV4Polling(t, "idle")
	f := wire.NewFrame([]byte(`2["e","x"]`))
	// One at a time, so each reaches the engine's poll queue (whose bound is the one
	// that must fire here) rather than piling up in the connection's.
	for i := 0; i < 10_000 && c.SendFrame(f); i++ {
		for {
			c.mu.Lock()
			idle := !c.writing && len(c.queue) == 0
			c.mu.Unlock()
			if idle {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	select {
	case <-c.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
	if r := c.closeReason(); r != ReasonSlowConsumer {
		t.Fatalf("closed for %q, want %q", r, ReasonSlowConsumer)
	}
}

// v4 sessions count against MaxConnsPerIP from their handshake, before any CONNECT,
// on both transports; v3 handshakes see them too. A session that ends frees its place.
func TestV4SessionsBeforeConnectCountPerIP(t *testing.T) {
	vs := newV5Server(t, Options{MaxConnsPerIP: 3})
	var ps []*poller
	for i := 0; i < 2; i++ {
		ps = append(ps, openV4Polling(t, vs.url, ""))
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	refused := func(what string, res *http.Response) {
		t.Helper()
		if res == nil {
			t.Fatalf("%s: no answer", what)
		}
		var body errs.Body
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusTooManyRequests || body.Error != errs.CodeTooManyConnections {
			t.Fatalf("%s: %d %+v, want 429 %s", what, res.StatusCode, body, errs.CodeTooManyConnections)
		}
	}
	for i := 0; i < 5; i++ {
		res, err := http.Get(vs.url + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		refused("fourth v4 polling session", res)
		_, res, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
		if err == nil {
			t.Fatal("fourth v4 websocket session accepted")
		}
		refused("fourth v4 websocket session", res)
	}
	res, err := http.Get(vs.url + "/socket.io/?EIO=3&transport=polling&token=" + vs.token(t, "v3"))
	if err != nil {
		t.Fatal(err)
	}
	refused("v3 session over the limit", res)
	// An upgrade's websocket is one more socket.
	_, res, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+ps[0].sid(), nil)
	if err == nil {
		t.Fatal("an upgrade over the limit was accepted")
	}
	refused("upgrade over the limit", res)

	ps[0].post("1") // the client closes it
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(vs.url + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed session's place was not freed: %d", res.StatusCode)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A v3 upgrade's websocket counts per IP while it is one, and closes with its session
// (go-socket.io leaves it open until its own timeout, or for good when it was swapped
// into a session that had just ended).
func TestV3ProbeCountsPerIPAndClosesWithItsSession(t *testing.T) {
	ts := newTestServer(t, Options{MaxConnsPerIP: 2})
	resp, err := http.Get(ts.url + "/?EIO=3&transport=polling&b64=1&token=p")
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := sidInOpen.FindSubmatch(open)
	if m == nil {
		t.Fatalf("no sid in %q", open)
	}
	c := ts.conn(t, "p")
	probe, _, err := websocket.DefaultDialer.Dial(ts.wsURL("sid="+string(m[1])), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := probe.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, probe, "3probe")
	res, err := http.Get(ts.url + "/?EIO=3&transport=polling&b64=1&token=q")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket of the address (a session and a probe open): %d, want 429", res.StatusCode)
	}
	c.Close("test")
	_ = probe.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := probe.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the probe outlived its session")
			}
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.ips.count("127.0.0.1") != 0 || ts.v3.Upgrading() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets still counted, %d upgrades", ts.ips.count("127.0.0.1"), ts.v3.Upgrading())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A request without EIO is refused 400, as engine.io does.
func TestMissingEngineIOVersionIsRefused(t *testing.T) {
	ts := newTestServer(t, Options{})
	res, err := http.Get(ts.url + "/?transport=polling&token=x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "unsupported_protocol") {
		t.Fatalf("no EIO: %d %q, want 400 unsupported_protocol", res.StatusCode, body)
	}
}

// go-socket.io's 5xx texts (here a second poll at once: "write: overlap") reach the
// client as our JSON error with a fixed message.
func TestEngine5xxIsOurJSON(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp, err := http.Get(ts.url + "/?EIO=3&transport=polling&b64=1&token=o")
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := sidInOpen.FindSubmatch(open)
	if m == nil {
		t.Fatalf("no sid in %q", open)
	}
	u := ts.url + "/?EIO=3&transport=polling&b64=1&sid=" + string(m[1])
	c := ts.conn(t, "o")
	// Drain what the connection queued, then park one poll.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			res, err := http.Get(u)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.Contains(string(b), "connection_established") {
				return
			}
		}
	}()
	<-drained
	// Two polls at once: nothing is queued, so one parks and the library refuses the
	// other with a 500 at once.
	type answer struct {
		status int
		ctype  string
		body   []byte
	}
	answers := make(chan answer, 2)
	for i := 0; i < 2; i++ {
		go func() {
			res, err := http.Get(u)
			if err != nil {
				answers <- answer{}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			answers <- answer{res.StatusCode, res.Header.Get("Content-Type"), b}
		}()
	}
	first := <-answers
	c.Close("test") // ends the parked poll
	second := <-answers
	got := first
	if got.status < 500 {
		got = second
	}
	status, ctype, body := got.status, got.ctype, got.body
	if status != 500 {
		t.Fatalf("overlapping polls: %d %q and %d %q, want go-socket.io's 500", first.status, first.body, second.status, second.body)
	}
	var b errs.Body
	if err := json.Unmarshal(body, &b); err != nil || !strings.HasPrefix(ctype, "application/json") || b.Error != "transport_error" || strings.Contains(string(body), "overlap") {
		t.Fatalf("engine 500 answered %s %q, want our JSON transport_error without the library's text", ctype, body)
	}
}

// The v4 OPEN packet announces socket.io's defaults: pingInterval 25000, pingTimeout 20000.
func TestV4OpenAnnouncesSocketIOPingDefaults(t *testing.T) {
	vs := newV5Server(t, Options{})
	res, err := http.Get(vs.url + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var open struct{ PingInterval, PingTimeout int }
	if len(b) < 2 || json.Unmarshal(b[1:], &open) != nil || open.PingInterval != 25000 || open.PingTimeout != 20000 {
		t.Fatalf("open packet %q, want pingInterval 25000 and pingTimeout 20000", b)
	}
}

// openProbe starts a v4 upgrade on sid and answers the probe; the client never sends its
// upgrade packet.
func (vs *v5Server) openProbe(t *testing.T, sid string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	readUntil(t, ws, "3probe")
	return ws
}

// probeClosed waits for the server to close a probe, well before the upgrade timeout
// (10 s) would.
func probeClosed(t *testing.T, ws *websocket.Conn, what string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the probe outlived %s", what)
			}
			return
		}
	}
}

// A v4 upgrade's websocket closes with its session: at the connect timeout of a session
// that never sent CONNECT, and at shutdown.
func TestV4ProbeClosesAtConnectTimeoutAndShutdown(t *testing.T) {
	vs := newV5Server(t, Options{ConnectTimeout: 300 * time.Millisecond})
	probeClosed(t, vs.openProbe(t, openV4Polling(t, vs.url, "").sid()), "the connect timeout")

	vs = newV5Server(t, Options{})
	p, _ := vs.connectV4Polling(t, "u")
	ws := vs.openProbe(t, p.sid())
	done := make(chan error, 1)
	go func() { done <- vs.Shutdown(context.Background()) }()
	probeClosed(t, ws, "shutdown")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
