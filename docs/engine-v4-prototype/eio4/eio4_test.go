//go:build ignore

package eio4

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// recorder is a Handler that records messages and echoes each one back.
type recorder struct {
	s      *Session
	mu     sync.Mutex
	got    []string
	closed chan string
}

func (r *recorder) OnMessage(t string) {
	if t == "bye" { // a handler may close its own session
		r.s.Close()
		return
	}
	r.mu.Lock()
	r.got = append(r.got, t)
	r.mu.Unlock()
	r.s.Send("echo:" + t)
}
func (r *recorder) OnClose(reason string) { r.closed <- reason }

func newTestServer(t *testing.T, o Options) (*httptest.Server, chan *recorder) {
	t.Helper()
	recs := make(chan *recorder, 16)
	o.OnOpen = func(s *Session) Handler {
		r := &recorder{s: s, closed: make(chan string, 1)}
		recs <- r
		return r
	}
	o.CheckOrigin = func(*http.Request) bool { return true }
	ts := httptest.NewServer(NewServer(o))
	t.Cleanup(ts.Close)
	return ts, recs
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	res, err := http.Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
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
	if open.Sid == "" || len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" || open.PingInterval == 0 || open.MaxPayload == 0 {
		t.Fatalf("open packet %q", body)
	}
	return open.Sid
}

func TestRefusesOtherProtocolVersionsAndUnknownSessions(t *testing.T) {
	ts, _ := newTestServer(t, Options{})
	for _, q := range []string{"EIO=3&transport=polling", "transport=polling", "EIO=4&transport=flash", "EIO=4&transport=polling&sid=nope"} {
		code, body := get(t, ts.URL+"/socket.io/?"+q)
		if code != 400 || !strings.Contains(body, `"code":`) {
			t.Errorf("%s: %d %q, want 400 with an Engine.IO error code", q, code, body)
		}
	}
}

func TestPollingPayloadsUseTheRecordSeparator(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, body := post(t, u, "4a\x1e4b\x1e6\x1e4c"); code != 200 || body != "ok" {
		t.Fatalf("post: %d %q", code, body)
	}
	if code, body := get(t, u); code != 200 || body != "4echo:a\x1e4echo:b\x1e4echo:c" {
		t.Fatalf("poll: %d %q", code, body)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if strings.Join(rec.got, ",") != "a,b,c" {
		t.Fatalf("handler got %v", rec.got)
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
	if r := <-rec.closed; r != "overlapping poll" {
		t.Fatalf("closed for %q", r)
	}
	<-first
}

func TestServerPingsAndClosesWithoutPong(t *testing.T) {
	ts, recs := newTestServer(t, Options{PingInterval: 20 * time.Millisecond, PingTimeout: 30 * time.Millisecond})
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
	select { // no pong this time
	case r := <-rec.closed:
		if r != "ping timeout" {
			t.Fatalf("closed for %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session not closed without a pong")
	}
}

// TestUpgradeKeepsOrder walks the default client path: polling, a probe, a POST made
// during the upgrade, the upgrade packet, then the websocket carries everything queued
// meanwhile, in order.
func TestUpgradeKeepsOrder(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	pu := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	parked := make(chan string, 1)
	go func() { _, b := get(t, pu); parked <- b }()

	wu := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket&sid=" + sid
	ws, _, err := websocket.DefaultDialer.Dial(wu, nil)
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
	rec.s.Send("queued")
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	rec.s.Send("after")
	var got []string
	for len(got) < 3 {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	if want := "4echo:during,4queued,4after"; strings.Join(got, ",") != want {
		t.Fatalf("websocket got %v, want %s", got, want)
	}
	if code, _ := get(t, pu); code != 400 {
		t.Fatalf("poll after upgrade: %d, want 400", code)
	}
}

func TestHandlerClosesItsOwnSession(t *testing.T) {
	ts, recs := newTestServer(t, Options{})
	sid := handshake(t, ts.URL)
	rec := <-recs
	u := ts.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	done := make(chan int, 1)
	go func() { code, _ := post(t, u, "4bye\x1e4after"); done <- code }()
	select {
	case r := <-rec.closed:
		if r != "server close" {
			t.Fatalf("closed for %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session not closed by its handler")
	}
	if code := <-done; code != 200 {
		t.Fatalf("post: %d", code)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after close: %d, want 400", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 0 {
		t.Fatalf("handler got %v after its session closed", rec.got)
	}
}
