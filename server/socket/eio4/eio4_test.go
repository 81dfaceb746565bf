package eio4

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/errs"
)

// gorillaWS is a plain WebSocket for the tests (the socket layer hands in its own).
type gorillaWS struct {
	c  *websocket.Conn
	mu sync.Mutex
}

func (g *gorillaWS) NextMessage() (bool, io.Reader, error) {
	mt, r, err := g.c.NextReader()
	return mt == websocket.BinaryMessage, r, err
}
func (g *gorillaWS) WriteText(p []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.c.WriteMessage(websocket.TextMessage, p)
}
func (g *gorillaWS) SetReadDeadline(t time.Time) error { return g.c.SetReadDeadline(t) }
func (g *gorillaWS) RemoteAddr() net.Addr              { return g.c.RemoteAddr() }
func (g *gorillaWS) Close() error                      { return g.c.Close() }

// recorder reads a session as the socket layer does and echoes each message back.
type recorder struct {
	s      *Session
	mu     sync.Mutex
	got    []string
	closed chan string
}

func (r *recorder) run() {
	for {
		binary, rc, err := r.s.NextReader()
		if err != nil {
			r.closed <- r.s.Reason()
			return
		}
		b, _ := io.ReadAll(rc)
		t := string(b)
		if binary {
			t = "<binary>"
		}
		if t == "bye" { // the reader may close its own session
			_ = r.s.Close()
			continue
		}
		r.mu.Lock()
		r.got = append(r.got, t)
		r.mu.Unlock()
		_ = r.s.Send([]byte("echo:" + t))
	}
}

func newTestServer(t *testing.T, o Options) (*httptest.Server, chan *recorder) {
	return newTestServerReading(t, o, true)
}

// newTestServerReading: read false leaves every session unread.
func newTestServerReading(t *testing.T, o Options, read bool) (*httptest.Server, chan *recorder) {
	t.Helper()
	return newTestServerWrapped(t, o, read, nil)
}

// newTestServerWrapped: wrap, if set, wraps every websocket the server accepts.
func newTestServerWrapped(t *testing.T, o Options, read bool, wrap func(WebSocket) WebSocket) (*httptest.Server, chan *recorder) {
	t.Helper()
	recs := make(chan *recorder, 64)
	o.OnOpen = func(s *Session) {
		r := &recorder{s: s, closed: make(chan string, 1)}
		if read {
			go r.run()
		}
		recs <- r
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	o.Upgrade = func(w http.ResponseWriter, r *http.Request) (WebSocket, error) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			return wrap(&gorillaWS{c: c}), nil
		}
		return &gorillaWS{c: c}, nil
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, recs
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	res, err := http.Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func handshake(t *testing.T, base string) (sid string) {
	t.Helper()
	code, body := get(t, base+"/socket.io/?EIO=4&transport=polling")
	if code != 200 || body[0] != '0' {
		t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct {
		Sid          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		MaxPayload   int      `json:"maxPayload"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	if len(open.Sid) < 22 || len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" || open.PingInterval == 0 || open.MaxPayload == 0 {
		t.Fatalf("open packet %q", body)
	}
	return open.Sid
}

func waitClosed(t *testing.T, rec *recorder, want string) {
	t.Helper()
	select {
	case r := <-rec.closed:
		if r != want {
			t.Fatalf("closed for %q, want %q", r, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("session not closed (want %q)", want)
	}
}

func TestNewServerNeedsUpgradeAndOnOpen(t *testing.T) {
	if _, err := NewServer(Options{}); err == nil {
		t.Fatal("no error without Upgrade and OnOpen")
	}
}

func TestRefusesOtherProtocolVersionsAndUnknownSessions(t *testing.T) {
	ts, _ := newTestServer(t, Options{})
	for q, want := range map[string]string{
		"EIO=3&transport=polling":          errs.CodeUnsupportedProtocol,
		"transport=polling":                errs.CodeUnsupportedProtocol,
		"EIO=4&transport=flash":            errs.CodeInvalidTransport,
		"EIO=4&transport=polling&sid=nope": errs.CodeInvalidSid,
	} {
		code, body := get(t, ts.URL+"/socket.io/?"+q)
		assertRefusal(t, q, code, body, want)
	}
	code, body := post(t, ts.URL+"/socket.io/?EIO=4&transport=polling", "4x")
	assertRefusal(t, "handshake by POST", code, body, errs.CodeBadRequest)
}

func TestSessionIDsDiffer(t *testing.T) {
	ts, _ := newTestServer(t, Options{})
	seen := map[string]bool{}
	for range 20 {
		sid := handshake(t, ts.URL)
		if seen[sid] {
			t.Fatalf("sid %s repeated", sid)
		}
		seen[sid] = true
	}
}

func TestPollingPayloadsUseTheRecordSeparator(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, body := post(t, u, "4a\x1e4b\x1e6\x1e4c\x1ebAQI="); code != 200 || body != "ok" {
		t.Fatalf("post: %d %q", code, body)
	}
	want := "4echo:a\x1e4echo:b\x1e4echo:c\x1e4echo:<binary>"
	var got string
	for len(got) < len(want) { // the echoes may be split over polls
		_, body := get(t, u)
		if got != "" {
			got += "\x1e"
		}
		got += body
	}
	if got != want {
		t.Fatalf("polls: %q, want %q", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if strings.Join(rec.got, ",") != "a,b,c,<binary>" {
		t.Fatalf("reader got %v", rec.got)
	}
}

func TestOverlappingPollsCloseTheSession(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	first := make(chan string, 1)
	go func() { _, b := get(t, u); first <- b }()
	for { // wait until the first poll is parked
		rec.s.mu.Lock()
		parked := rec.s.wake != nil
		rec.s.mu.Unlock()
		if parked {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("second poll: %d, want 400", code)
	}
	waitClosed(t, rec, "overlapping poll")
	<-first
}

func TestOversizedPostClosesTheSession(t *testing.T) {
	ts, recs := newTestServer(t, Options{MaxPayload: 100})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := post(t, u, "4"+strings.Repeat("x", 200)); code != 400 {
		t.Fatalf("oversized post: %d, want 400", code)
	}
	waitClosed(t, rec, "payload too large")
}

func TestPostFloodClosesTheSession(t *testing.T) {
	ts, recs := newTestServerReading(t, Options{MaxQueued: 4}, false)
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := post(t, u, "4a\x1e4b\x1e4c"); code != 200 {
		t.Fatalf("post within the bound: %d", code)
	}
	if code, body := post(t, u, "4d\x1e4e"); code != 429 || !strings.Contains(body, `"inbound_queue_full"`) {
		t.Fatalf("post past the bound: %d %s, want 429 inbound_queue_full", code, body)
	}
	if !closedWithin(rec.s, 5*time.Second) {
		t.Fatal("flooding session not closed")
	}
	if r := rec.s.Reason(); r != "flood" {
		t.Fatalf("closed for %q", r)
	}
	// What was read before the close is still delivered, then the end.
	for _, want := range []string{"a", "b", "c", "d"} {
		_, rc, err := rec.s.NextReader()
		if err != nil {
			t.Fatalf("read %s: %v", want, err)
		}
		if b, _ := io.ReadAll(rc); string(b) != want {
			t.Fatalf("read %q, want %q", b, want)
		}
	}
	if _, _, err := rec.s.NextReader(); err != ErrClosed {
		t.Fatalf("read after the queued ones: %v, want ErrClosed", err)
	}
}

func TestUnpolledSessionIsClosedWhenItsQueueIsFull(t *testing.T) {
	ts, recs := newTestServer(t, Options{MaxQueued: 3})
	handshake(t, ts.URL)
	rec := <-recs
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		err = rec.s.Send([]byte("x"))
	}
	if err != ErrQueueFull || !errors.Is(err, ErrClosed) {
		t.Fatalf("send to a full poll queue: %v, want ErrQueueFull", err)
	}
	waitClosed(t, rec, "poll queue full")
}

func TestServerPingsAndClosesWithoutPong(t *testing.T) {
	ts, recs := newTestServer(t, Options{PingInterval: 20 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if _, body := get(t, u); body != "2" {
		t.Fatalf("poll: %q, want a ping", body)
	}
	post(t, u, "3") // pong: the session lives on to the next ping
	if _, body := get(t, u); body != "2" {
		t.Fatalf("poll: %q, want a second ping", body)
	}
	waitClosed(t, rec, "ping timeout") // no pong this time
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after a ping timeout: %d, want 400 (as engine.io)", code)
	}
}

func wsURL(ts *httptest.Server, q string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket" + q
}

func TestWebsocketOnlySession(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, b, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(b), `0{"sid":`) || !strings.Contains(string(b), `"upgrades":[]`) {
		t.Fatalf("open packet %q %v", b, err)
	}
	rec := <-recs
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4hello"))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "4echo:hello" {
		t.Fatalf("echo %q %v", b, err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("1"))
	waitClosed(t, rec, "client close")
}

// TestUpgradeKeepsOrder walks the default client path: polling, a probe, a POST made
// during the upgrade, the upgrade packet, then the websocket carries everything queued
// meanwhile, in order, and the reader moves to it.
func TestUpgradeKeepsOrder(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	pu := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	parked := make(chan string, 1)
	go func() { _, b := get(t, pu); parked <- b }()

	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "3probe" {
		t.Fatalf("probe answer %q %v", b, err)
	}
	if b := <-parked; b != "6" {
		t.Fatalf("parked poll answered %q, want a noop", b)
	}
	if code, _ := post(t, pu, "4during"); code != 200 { // the client's last POST
		t.Fatalf("post during upgrade: %d", code)
	}
	// The reader echoes "during" on polling; wait for it so the order below is fixed.
	for {
		rec.s.mu.Lock()
		n := len(rec.s.out)
		rec.s.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_ = rec.s.Send([]byte("queued"))
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4on-ws"))
	var got []string
	for len(got) < 3 {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	if want := "4echo:during,4queued,4echo:on-ws"; strings.Join(got, ",") != want {
		t.Fatalf("websocket got %v, want %s", got, want)
	}
	if code, _ := get(t, pu); code != 400 {
		t.Fatalf("poll after upgrade: %d, want 400", code)
	}
	if code, _ := post(t, pu, "4late"); code != 400 {
		t.Fatalf("post after upgrade: %d, want 400", code)
	}
}

func TestFailedProbeLeavesTheSessionOnPolling(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.Close() // the probe dies before the upgrade
	for {
		rec.s.mu.Lock()
		probing := rec.s.probing
		rec.s.mu.Unlock()
		if !probing {
			break
		}
		time.Sleep(time.Millisecond)
	}
	pu := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := post(t, pu, "4still"); code != 200 {
		t.Fatalf("post after a failed probe: %d", code)
	}
	if _, body := get(t, pu); body != "4echo:still" {
		t.Fatalf("poll after a failed probe: %q", body)
	}
}

func TestReaderClosesItsOwnSession(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := post(t, u, "4bye"); code != 200 {
		t.Fatalf("post: %d", code)
	}
	waitClosed(t, rec, "server close")
	if _, body := get(t, u); body != "1" {
		t.Fatalf("first poll after close: %q, want the close packet", body)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after close: %d, want 400", code)
	}
}

// TestClosedPollingSessionDeliversWhatWasQueued: a message queued just before the close
// (the error that explains it) reaches a polling client, then the close packet in an
// answer of its own (socket.io-client 4 drops a message a close in its payload overtakes).
func TestClosedPollingSessionDeliversWhatWasQueued(t *testing.T) {
	ts, recs := newTestServerReading(t, Options{}, false)
	sid := handshake(t, ts.URL)
	rec := <-recs
	_ = rec.s.Send([]byte("why"))
	_ = rec.s.Close()
	if n := rec.s.srv.Count(); n != 0 {
		t.Fatalf("Count %d after close", n)
	}
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if _, body := get(t, u); body != "4why" {
		t.Fatalf("poll after close: %q, want the queued message", body)
	}
	if _, body := get(t, u); body != "1" {
		t.Fatalf("second poll after close: %q, want the close packet", body)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("third poll after close: %d, want 400", code)
	}
}

// TestCloseDoesNotWaitForABlockedWriter: Close must not wait on a websocket whose writer
// is stuck (a slow consumer is closed from a sender that must never wait).
func TestCloseDoesNotWaitForABlockedWriter(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	rec := <-recs
	g := rec.s.ws.(*gorillaWS)
	g.mu.Lock() // a writer holds the websocket
	defer g.mu.Unlock()
	done := make(chan struct{})
	go func() { _ = rec.s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the websocket's writer")
	}
}

func TestShutdownClosesEverySession(t *testing.T) {
	o := Options{}
	ts, recs := newTestServer(t, o)
	handshake(t, ts.URL)
	rec := <-recs
	rec.s.srv.Shutdown()
	waitClosed(t, rec, "server close")
	if n := rec.s.srv.Count(); n != 0 {
		t.Fatalf("%d sessions after Shutdown", n)
	}
}

// stuckWS is a websocket whose client stops reading after the probe: every write after
// the first blocks, as a write to a full socket buffer does, until the socket is closed.
type stuckWS struct {
	WebSocket
	mu      sync.Mutex
	writes  int
	closed  chan struct{}
	blocked chan struct{} // closed once a write is stuck
	once    sync.Once
}

func newStuckWS(ws WebSocket) *stuckWS {
	return &stuckWS{WebSocket: ws, closed: make(chan struct{}), blocked: make(chan struct{})}
}

func (w *stuckWS) WriteText(p []byte) error {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n == 1 { // 3probe
		return w.WebSocket.WriteText(p)
	}
	close(w.blocked)
	<-w.closed
	return net.ErrClosed
}

func (w *stuckWS) Close() error {
	w.once.Do(func() { close(w.closed) })
	return w.WebSocket.Close()
}

// probeAndUpgrade runs the client's side of an upgrade on sid up to the upgrade packet.
func probeAndUpgrade(t *testing.T, ts *httptest.Server, sid string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "3probe" {
		t.Fatalf("probe answer %q %v", b, err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	return ws
}

// TestUpgradeBacklogHoldsNoLock: a client lets packets queue on polling, then upgrades
// to a websocket it never reads. Writing the backlog must not hold the session: senders
// and WebSocket (which the socket layer asks on every send while on polling) return at once, and once
// the queue is full the session is closed as a slow consumer, which frees the write.
func TestUpgradeBacklogHoldsNoLock(t *testing.T) {
	var stuck *stuckWS
	var mu sync.Mutex
	ts, recs := newTestServerWrapped(t, Options{MaxQueued: 8}, false, func(ws WebSocket) WebSocket {
		mu.Lock()
		defer mu.Unlock()
		stuck = newStuckWS(ws)
		return stuck
	})
	sid := handshake(t, ts.URL)
	rec := <-recs
	for i := 0; i < 3; i++ {
		if err := rec.s.Send([]byte("backlog")); err != nil {
			t.Fatal(err)
		}
	}
	probeAndUpgrade(t, ts, sid)
	mu.Lock()
	w := stuck
	mu.Unlock()
	select {
	case <-w.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the backlog was not written to the websocket")
	}
	done := make(chan error, 1)
	go func() {
		_ = rec.s.WebSocket()
		var err error
		for i := 0; i < 20 && err == nil; i++ {
			err = rec.s.Send([]byte("more"))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("sends behind a stuck upgrade: %v, want ErrQueueFull", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a sender waited for the upgrading websocket's write")
	}
	waitClosedNoReader(t, rec, "poll queue full")
	select {
	case <-w.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck websocket was not closed with its session")
	}
}

// TestProbeClosesWithItsSession: a probe websocket that never sends its upgrade packet
// is closed when its session closes.
func TestProbeClosesWithItsSession(t *testing.T) {
	ts, recs := newTestServer(t, Options{UpgradeTimeout: time.Hour})
	sid := handshake(t, ts.URL)
	rec := <-recs
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "3probe" {
		t.Fatalf("probe answer %q %v", b, err)
	}
	_ = rec.s.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil || isTimeout(err) {
		t.Fatalf("probe still open after its session closed: %v", err)
	}
}

// TestProbeTimesOutWhateverItSends: the upgrade has one deadline; messages do not
// extend it.
func TestProbeTimesOutWhateverItSends(t *testing.T) {
	ts, recs := newTestServer(t, Options{UpgradeTimeout: 200 * time.Millisecond})
	sid := handshake(t, ts.URL)
	<-recs
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	closed := make(chan struct{})
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				close(closed)
				return
			}
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stop := time.After(5 * time.Second)
	for {
		select {
		case <-closed:
			return
		case <-stop:
			t.Fatal("a probe that keeps sending outlived the upgrade timeout")
		case <-tick.C:
			_ = ws.WriteMessage(websocket.TextMessage, []byte("4keepalive"))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestAdmitBoundsSessionsAndProbes: Options.Admit is asked for every new session and
// every upgrade websocket; each release comes when that session or probe ends.
func TestAdmitBoundsSessionsAndProbes(t *testing.T) {
	var mu sync.Mutex
	open := 0
	admit := func(w http.ResponseWriter, r *http.Request) (func(), bool) {
		mu.Lock()
		defer mu.Unlock()
		if open >= 2 {
			w.WriteHeader(http.StatusTooManyRequests)
			return nil, false
		}
		open++
		return func() { mu.Lock(); open--; mu.Unlock() }, true
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return open }
	ts, recs := newTestServer(t, Options{Admit: admit, UpgradeTimeout: time.Hour})
	sid := handshake(t, ts.URL)
	rec := <-recs
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil) // a probe
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if code, _ := get(t, ts.URL+"/socket.io/?EIO=4&transport=polling"); code != 429 {
		t.Fatalf("third polling session: %d, want 429", code)
	}
	if _, res, err := websocket.DefaultDialer.Dial(wsURL(ts, ""), nil); err == nil || res == nil || res.StatusCode != 429 {
		t.Fatalf("third websocket session: %v, want 429", err)
	}
	_ = rec.s.Close() // closes the probe too: both released
	deadline := time.Now().Add(5 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d still counted after the session and its probe closed", count())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClientCloseAnswersTheWaitingPollWithNoop: as engine.io, a close packet from the
// client ends a pending poll with a noop; the session is then gone.
func TestClientCloseAnswersTheWaitingPollWithNoop(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	parked := make(chan string, 1)
	go func() { _, b := get(t, u); parked <- b }()
	for {
		rec.s.mu.Lock()
		waiting := rec.s.wake != nil
		rec.s.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if code, _ := post(t, u, "1"); code != 200 {
		t.Fatalf("close post: %d", code)
	}
	if b := <-parked; b != "6" {
		t.Fatalf("pending poll answered %q, want a noop", b)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after the client closed: %d, want 400", code)
	}
}

// TestSecondWebsocketAfterUpgradeIsAcceptedThenClosed: as engine.io, a websocket for a
// session already upgraded completes its handshake and is closed; the first goes on.
func TestSecondWebsocketAfterUpgradeIsAcceptedThenClosed(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	<-recs
	ws := probeAndUpgrade(t, ts, sid)
	ws2, res, err := websocket.DefaultDialer.Dial(wsURL(ts, "&sid="+sid), nil)
	if err != nil {
		t.Fatalf("second websocket refused at its handshake: %v %v", err, res)
	}
	defer ws2.Close()
	_ = ws2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws2.ReadMessage(); err == nil || isTimeout(err) {
		t.Fatalf("second websocket not closed: %v", err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4hello"))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "4echo:hello" {
		t.Fatalf("first websocket after the second: %q %v", b, err)
	}
}

// TestInboundQueueIsBoundedInBytes: posted and unread messages are bounded in bytes too.
func TestInboundQueueIsBoundedInBytes(t *testing.T) {
	ts, recs := newTestServerReading(t, Options{MaxQueuedBytes: 100}, false)
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := post(t, u, "4"+strings.Repeat("a", 60)); code != 200 {
		t.Fatalf("post within the bound: %d", code)
	}
	if code, body := post(t, u, "4"+strings.Repeat("b", 60)); code != 429 || !strings.Contains(body, "inbound_queue_full") {
		t.Fatalf("post past the byte bound: %d %s, want 429 inbound_queue_full", code, body)
	}
	waitClosedNoReader(t, rec, "flood")
}

// closedWithin reports whether s closes within d.
func closedWithin(s *Session, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s.Reason() != "" {
			return true
		}
	}
	return false
}

func waitClosedNoReader(t *testing.T, rec *recorder, want string) {
	t.Helper()
	if !closedWithin(rec.s, 5*time.Second) {
		t.Fatalf("session not closed (want %q)", want)
	}
	if r := rec.s.Reason(); r != want {
		t.Fatalf("closed for %q, want %q", r, want)
	}
}

// TestInvalidPacketClosesTheSession: as engine.io, a packet of no Engine.IO type is
// refused and ends the session, on polling and on websocket.
func TestInvalidPacketClosesTheSession(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := post(t, u, "abc"); code != 400 {
		t.Fatalf("post of an invalid packet: %d, want 400", code)
	}
	waitClosed(t, rec, "parse error")
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after an invalid packet: %d, want 400", code)
	}

	ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // open
		t.Fatal(err)
	}
	rec = <-recs
	_ = ws.WriteMessage(websocket.TextMessage, []byte("abc"))
	waitClosed(t, rec, "parse error")
}

// assertRefusal checks a 400 with Jetsocket's error body {error, message} and code want,
// the shape the v3 endpoint answers with.
func assertRefusal(t *testing.T, what string, status int, body, want string) {
	t.Helper()
	var e struct{ Error, Message string }
	if status != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error != want || e.Message == "" {
		t.Errorf("%s: %d %q, want 400 {error:%q, message}", what, status, body, want)
	}
}
