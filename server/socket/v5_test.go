package socket

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/wire"
	"github.com/jetsocket/jetsocket/tokens"
)

// v5Server is a Server whose Authenticate is the real token verifier, for the
// socket.io-client 3.x/4.x CONNECT path.
type v5Server struct {
	*Server
	url      string
	tm       *tokens.Manager
	connects atomic.Int32
	admit    atomic.Pointer[error]

	mu    sync.Mutex
	conns map[string]*Conn
}

func newV5Server(t *testing.T, opts Options) *v5Server {
	t.Helper()
	tm, err := tokens.NewManager(tokens.Config{Secret: []byte(strings.Repeat("k", 32)), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	vs := &v5Server{tm: tm, conns: make(map[string]*Conn)}
	opts.Authenticate = tm.Verify
	opts.Admit = func(*tokens.Claims, string) error {
		if e := vs.admit.Load(); e != nil {
			return *e
		}
		return nil
	}
	opts.Handler = func(c *Conn, event string, args []json.RawMessage) any {
		return map[string]any{"event": event, "v5": c.v5}
	}
	opts.OnConnect = func(c *Conn) {
		vs.connects.Add(1)
		vs.mu.Lock()
		vs.conns[c.UserID()] = c
		vs.mu.Unlock()
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	vs.Server = s
	go func() { _ = s.Serve() }()
	hs := httptest.NewServer(s)
	vs.url = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		hs.Close()
	})
	return vs
}

func (vs *v5Server) token(t *testing.T, user string) string {
	t.Helper()
	tok, _, err := vs.tm.Issue(tokens.User{ID: user})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// poller is a raw Engine.IO v4 polling client.
type poller struct {
	t   *testing.T
	url string
}

func openV4Polling(t *testing.T, base, query string) *poller {
	t.Helper()
	res, err := http.Get(base + "/socket.io/?EIO=4&transport=polling" + query)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := sidInOpen.FindSubmatch(b)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("v4 handshake: %d %q", res.StatusCode, b)
	}
	return &poller{t: t, url: base + "/socket.io/?EIO=4&transport=polling&sid=" + string(m[1])}
}

func (p *poller) post(body string) int {
	p.t.Helper()
	res, err := http.Post(p.url, "text/plain", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// next polls until it has n packets (polls return what is queued so far).
func (p *poller) next(n int) []string {
	p.t.Helper()
	var got []string
	for len(got) < n {
		res, err := http.Get(p.url)
		if err != nil {
			p.t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			p.t.Fatalf("poll: %d %q (have %q)", res.StatusCode, b, got)
		}
		for _, pk := range strings.Split(string(b), "\x1e") {
			if pk != "6" && pk != "2" {
				got = append(got, pk)
			}
		}
	}
	return got
}

var v5ConnectOK = regexp.MustCompile(`^40\{"sid":"\d+\.\d+"\}$`)

func TestV5ConnectWithAuthToken(t *testing.T) {
	vs := newV5Server(t, Options{})
	p := openV4Polling(t, vs.url, "")
	if vs.connects.Load() != 0 || vs.Count() != 0 {
		t.Fatal("a socket exists before CONNECT")
	}
	p.post(`42["early",{}]`) // before CONNECT: belongs to no socket, ignored
	p.post(`40{"token":"` + vs.token(t, "alice") + `"}`)
	got := p.next(2)
	if !v5ConnectOK.MatchString(got[0]) || !strings.HasPrefix(got[1], `42["jetsocket:connection_established",{"socket_id":"`) || !strings.Contains(got[1], `"user_id":"alice"`) {
		t.Fatalf("after CONNECT got %q", got)
	}
	if vs.connects.Load() != 1 {
		t.Fatalf("OnConnect ran %d times", vs.connects.Load())
	}
	p.post(`421["hello",1]`)
	if ack := p.next(1); ack[0] != `431[{"event":"hello","v5":true}]` {
		t.Fatalf("ack %q", ack)
	}
}

func TestV5ConnectWithQueryToken(t *testing.T) {
	vs := newV5Server(t, Options{})
	p := openV4Polling(t, vs.url, "&token="+vs.token(t, "bob"))
	p.post("40")
	if got := p.next(2); !v5ConnectOK.MatchString(got[0]) || !strings.Contains(got[1], `"user_id":"bob"`) {
		t.Fatalf("after CONNECT got %q", got)
	}
}

func TestV5BadTokenIsAConnectErrorAndTheClientMayRetry(t *testing.T) {
	vs := newV5Server(t, Options{})
	p := openV4Polling(t, vs.url, "")
	for body, reason := range map[string]string{
		`40`:                    "missing",
		`40{}`:                  "missing",
		`40{"token":"a.b.c"}`:   "malformed",
		`40{"token":"garbage"}`: "malformed",
	} {
		p.post(body)
		want := `44{"data":{"reason":"` + reason + `","status":401},"message":"invalid_token"}`
		if got := p.next(1); got[0] != want {
			t.Fatalf("%s: got %q, want %q", body, got, want)
		}
	}
	if vs.connects.Load() != 0 || vs.Count() != 0 {
		t.Fatal("a refused CONNECT made a socket")
	}
	p.post(`40{"token":"` + vs.token(t, "carol") + `"}`)
	if got := p.next(2); !v5ConnectOK.MatchString(got[0]) {
		t.Fatalf("retry got %q", got)
	}
}

func TestV5AdmitRefusalIsAConnectError(t *testing.T) {
	vs := newV5Server(t, Options{})
	var refusal error = errs.New(errs.RateLimited, "too_many_connections", "this user has too many open connections")
	vs.admit.Store(&refusal)
	p := openV4Polling(t, vs.url, "")
	p.post(`40{"token":"` + vs.token(t, "dave") + `"}`)
	want := `44{"data":{"reason":"this user has too many open connections","status":429},"message":"too_many_connections"}`
	if got := p.next(1); got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if vs.connects.Load() != 0 {
		t.Fatal("an refused CONNECT reached OnConnect")
	}
}

func TestV5OtherNamespacesAreRefused(t *testing.T) {
	vs := newV5Server(t, Options{})
	p := openV4Polling(t, vs.url, "")
	p.post(`40/admin,{"token":"x"}`)
	if got := p.next(1); got[0] != `44/admin,{"message":"Invalid namespace"}` {
		t.Fatalf("got %q", got)
	}
	p.post(`40{"token":"` + vs.token(t, "erin") + `"}`)
	p.next(2)
	p.post(`42/admin,["x"]`)
	if got := p.next(1); got[0] != `44/admin,{"message":"Invalid namespace"}` {
		t.Fatalf("event on another namespace: got %q", got)
	}
}

func TestV5SessionWithoutConnectIsClosed(t *testing.T) {
	vs := newV5Server(t, Options{ConnectTimeout: 50 * time.Millisecond})
	p := openV4Polling(t, vs.url, "")
	deadline := time.Now().Add(5 * time.Second)
	for vs.v4.Count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("session without CONNECT still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code := p.post("40"); code != http.StatusBadRequest {
		t.Fatalf("post to the closed session: %d, want 400", code)
	}
}

func TestV5GarbageBeforeConnectClosesTheSession(t *testing.T) {
	vs := newV5Server(t, Options{})
	p := openV4Polling(t, vs.url, "")
	p.post(`4x`) // not a socket.io packet
	deadline := time.Now().Add(5 * time.Second)
	for vs.v4.Count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("session still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestV5WebsocketGetsTheSharedFrameDirectly: a v4 websocket takes the same prebuilt
// frame as a v3 one, written directly to the socket.
func TestV5WebsocketGetsTheSharedFrameDirectly(t *testing.T) {
	vs := newV5Server(t, Options{})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() string {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if open := read(); !strings.HasPrefix(open, `0{"sid":`) {
		t.Fatalf("open %q", open)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+vs.token(t, "frank")+`"}`))
	if got := read(); !v5ConnectOK.MatchString("4" + got[1:]) {
		t.Fatalf("connect answer %q", got)
	}
	read() // connection_established
	vs.mu.Lock()
	c := vs.conns["frank"]
	vs.mu.Unlock()
	pkt, _ := wire.EncodeEvent("news", map[string]int{"n": 1})
	if !c.SendFrame(wire.NewFrame(pkt)) {
		t.Fatal("SendFrame refused")
	}
	if got := read(); got != `42["news",{"n":1}]` {
		t.Fatalf("got %q", got)
	}
	c.mu.Lock()
	direct := c.websocket() != nil
	c.mu.Unlock()
	if !direct {
		t.Fatal("v4 websocket not written directly")
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`4`+strings.Repeat("x", 70<<10)))
	if got := read(); !strings.Contains(got, CodeFrameTooLarge) {
		t.Fatalf("oversized frame: got %q", got)
	}
}

func TestV5ShutdownClosesSessionsWaitingForConnect(t *testing.T) {
	vs := newV5Server(t, Options{})
	openV4Polling(t, vs.url, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := vs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := vs.v4.Count(); n != 0 {
		t.Fatalf("%d v4 sessions after Shutdown", n)
	}
}

func TestUnknownEngineIOVersionsAreRefused(t *testing.T) {
	vs := newV5Server(t, Options{})
	for _, v := range []string{"5", "2", "x", "44"} {
		res, err := http.Get(vs.url + "/socket.io/?EIO=" + v + "&transport=polling&token=" + vs.token(t, "g"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "unsupported_protocol") {
			t.Errorf("EIO=%s: %d %q, want 400 unsupported_protocol", v, res.StatusCode, b)
		}
	}
	openV4Polling(t, vs.url, "") // the server keeps serving
}

func TestV5WebsocketOriginIsChecked(t *testing.T) {
	vs := newV5Server(t, Options{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://ok.example" }})
	u := "ws" + strings.TrimPrefix(vs.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	_, res, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, response %v, want 403", err, res)
	}
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"https://ok.example"}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	ws.Close()
}

func TestV5InboundRateLimit(t *testing.T) {
	vs := newV5Server(t, Options{InboundRate: 1, InboundBurst: 2})
	p := openV4Polling(t, vs.url, "")
	p.post(`40{"token":"` + vs.token(t, "gina") + `"}`)
	p.next(2)
	p.post(`42["a"]` + "\x1e" + `42["b"]` + "\x1e" + `42["c"]` + "\x1e" + `42["d"]`)
	got := p.next(1)
	if !strings.Contains(got[0], `"code":"rate_limited"`) {
		t.Fatalf("got %q, want a rate_limited error", got)
	}
}

// dialV5 opens a v4 websocket session and connects it as user; the client never reads
// again after connection_established.
func (vs *v5Server) dialV5(t *testing.T, user string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(vs.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil { // open
		t.Fatal(err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+vs.token(t, user)+`"}`))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "connection_established") {
			return ws
		}
	}
}

// A v4 connection that stops reading is closed as a slow consumer like a v3 one, and the
// sender is never held up (the close does not wait for the stuck writer either).
func TestV5SlowConsumerDoesNotBlockTheSender(t *testing.T) {
	vs := newV5Server(t, Options{SendQueue: 16})
	vs.dialV5(t, "frozen")
	vs.mu.Lock()
	c := vs.conns["frozen"]
	vs.mu.Unlock()
	f := wire.NewFrame([]byte(`2["e","` + strings.Repeat("y", 60_000) + `"]`))
	sent := make(chan struct{})
	go func() {
		for i := 0; i < 10_000 && c.SendFrame(f); i++ {
		}
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the sender was held up by a frozen v4 consumer")
	}
	if c.SendFrame(f) {
		t.Fatal("a consumer that never reads still takes frames")
	}
	select {
	case <-c.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow consumer not closed")
	}
	if r := c.closeReason(); r != ReasonSlowConsumer {
		t.Fatalf("closed for %q", r)
	}
}
