package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const testSecret = "app-test-secret-0123456789abcdef0123456789"

type testServer struct {
	base string
	host string
	out  *syncBuffer
	stop func() error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs the whole server in-process on a free port, as main does.
func startServer(t *testing.T, env map[string]string) *testServer {
	t.Helper()
	return startServerWith(t, env, Extensions{})
}

func startServerWith(t *testing.T, env map[string]string, ext Extensions) *testServer {
	t.Helper()
	vars := map[string]string{"ADDR": "127.0.0.1:0", "JWT_SECRET": testSecret}
	for k, v := range env {
		vars[k] = v
	}
	getenv := func(k string) string { return vars[k] }
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunWith(ctx, Options{Args: []string{"-env-file", ""}, Getenv: getenv, Stdout: out, Stderr: out, Ready: func(a net.Addr) { addrc <- a }, Extensions: ext})
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before ready: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("server not ready\n%s", out)
	}
	ts := &testServer{base: "http://" + addr.String(), host: addr.String(), out: out}
	var once sync.Once
	var stopErr error
	ts.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(15 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = ts.stop() })
	return ts
}

func (ts *testServer) login(t *testing.T, user, pass string) string {
	t.Helper()
	res, err := http.Post(ts.base+"/login", "application/json", strings.NewReader(`{"username":"`+user+`","password":"`+pass+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 || body.Token == "" {
		t.Fatalf("login %s: %d %v", user, res.StatusCode, err)
	}
	return body.Token
}

// wsClient is a raw Engine.IO v3 / socket.io client over a websocket.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func (ts *testServer) dial(t *testing.T, token string) (*wsClient, *http.Response, error) {
	t.Helper()
	u := "ws://" + ts.host + "/socket.io/?EIO=3&transport=websocket&token=" + url.QueryEscape(token)
	ws, res, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return nil, res, err
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}, res, nil
}

// next returns the next socket.io packet (an Engine.IO "4" message), skipping pongs.
func (c *wsClient) next() string {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		s := string(b)
		if strings.HasPrefix(s, "4") {
			return s[1:]
		}
	}
}

func (c *wsClient) send(packet string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte("4"+packet)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// event reads packets until the event named name and returns its payload.
func (c *wsClient) event(name string) map[string]any {
	c.t.Helper()
	for {
		p := c.next()
		if !strings.HasPrefix(p, "2[") {
			continue
		}
		var ev []json.RawMessage
		if err := json.Unmarshal([]byte(p[1:]), &ev); err != nil || len(ev) < 2 {
			c.t.Fatalf("bad event %q", p)
		}
		var n string
		_ = json.Unmarshal(ev[0], &n)
		if n != name {
			continue
		}
		var payload map[string]any
		_ = json.Unmarshal(ev[1], &payload)
		return payload
	}
}

// ack sends event with payload and ack id id, and returns the ack's payload.
func (c *wsClient) ack(id int, event string, payload any) map[string]any {
	c.t.Helper()
	b, _ := json.Marshal([]any{event, payload})
	c.send(fmt.Sprintf("2%d%s", id, b))
	prefix := fmt.Sprintf("3%d[", id)
	for {
		p := c.next()
		if strings.HasPrefix(p, prefix) {
			var res []map[string]any
			if err := json.Unmarshal([]byte(p[len(prefix)-1:]), &res); err != nil || len(res) != 1 {
				c.t.Fatalf("bad ack %q", p)
			}
			return res[0]
		}
	}
}

// established reads the handshake up to connection_established and returns its payload.
func (c *wsClient) established() map[string]string {
	c.t.Helper()
	if p := c.next(); p != "0" {
		c.t.Fatalf("first packet %q, want socket.io CONNECT", p)
	}
	p := c.next()
	var ev []json.RawMessage
	var name string
	var payload map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(p, "2")), &ev); err != nil || len(ev) != 2 {
		c.t.Fatalf("bad event %q", p)
	}
	_ = json.Unmarshal(ev[0], &name)
	_ = json.Unmarshal(ev[1], &payload)
	if name != "jetsocket:connection_established" {
		c.t.Fatalf("got %q, want connection_established", p)
	}
	return payload
}

func TestHTTPRoutes(t *testing.T) {
	ts := startServer(t, nil)
	get := func(path string) (int, string) {
		res, err := http.Get(ts.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("index: %d", code)
	}
	if code, body := get("/nope"); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	if code, body := get("/socket.io/?EIO=3&transport=polling"); code != 401 || !strings.Contains(body, `"invalid_token"`) {
		t.Fatalf("handshake without token: %d %s", code, body)
	}
	res, err := http.Post(ts.base+"/login", "application/json", strings.NewReader(`{"username":"bob","password":"wrong-pw-zz9"}`))
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("wrong password: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	res, err = http.Post(ts.base+"/login", "text/plain", strings.NewReader(`x`))
	if err != nil || res.StatusCode != 400 {
		t.Fatalf("bad content type: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	if err := ts.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if strings.Contains(ts.out.String(), "wrong-pw-zz9") {
		t.Fatal("a password reached the logs")
	}
}

func TestSocketSession(t *testing.T) {
	ts := startServer(t, nil)
	token := ts.login(t, "bob", "bob123")
	c, _, err := ts.dial(t, token)
	if err != nil {
		t.Fatal(err)
	}
	est := c.established()
	if est["user_id"] != "2" || !validSocketID(est["socket_id"]) {
		t.Fatalf("established %v", est)
	}

	c.send(`27["jetsocket:ping"]`)
	if p := c.next(); !strings.HasPrefix(p, `37[{"pong":true`) {
		t.Fatalf("ping ack: %q", p)
	}
	for _, bad := range []string{`2["x",`, "9", "2{}", `2/other,["x"]`, `0/admin`, `2["no-such-event",{}]`} {
		c.send(bad)
		if p := c.next(); !strings.Contains(p, "jetsocket:error") && !strings.HasPrefix(p, "4") {
			t.Fatalf("after %q got %q, want an error", bad, p)
		}
	}
	c.send(`28["jetsocket:ping"]`)
	if p := c.next(); !strings.HasPrefix(p, `38[`) {
		t.Fatalf("connection unusable after bad input: %q", p)
	}

	if err := ts.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if strings.Contains(ts.out.String(), token) {
		t.Fatal("the token reached the logs")
	}
}

func TestHandshakeRefusedBeforeSession(t *testing.T) {
	ts := startServer(t, nil)
	_, res, err := ts.dial(t, "not.a.token")
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("bad token over websocket: %v %v", res, err)
	}
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	if body["error"] != "invalid_token" || body["message"] == "" {
		t.Fatalf("body %v", body)
	}
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, map[string]string{"MAX_PAYLOAD_BYTES": "1024"})
	token := ts.login(t, "alice", "alice123")
	bystander, _, err := ts.dial(t, token)
	if err != nil {
		t.Fatal(err)
	}
	bystander.established()
	big, _, err := ts.dial(t, token)
	if err != nil {
		t.Fatal(err)
	}
	big.established()
	// The server reads no further than the limit, answers frame_too_large and closes;
	// the close may cut the client's own write of the rest short.
	_ = big.ws.WriteMessage(websocket.TextMessage, []byte(`42["jetsocket:ping","`+strings.Repeat("x", 3<<20)+`"]`))
	_ = big.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := big.ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("oversized frame: connection not closed")
			}
			break
		}
	}
	if !eventually(func() bool { return strings.Contains(ts.out.String(), `reason="frame too large"`) }) {
		t.Fatalf("no frame-too-large disconnect logged:\n%s", ts.out)
	}
	bystander.send(`21["jetsocket:ping"]`)
	if p := bystander.next(); !strings.HasPrefix(p, "31[") {
		t.Fatalf("bystander: %q", p)
	}
}

// Many connects, disconnects and refused handshakes leave no goroutines behind.
func TestNoGoroutineLeak(t *testing.T) {
	ts := startServer(t, nil)
	token := ts.login(t, "carol", "carol123")
	cycle := func() {
		c, _, err := ts.dial(t, token)
		if err != nil {
			t.Fatal(err)
		}
		c.established()
		c.ws.Close()
		if _, _, err := ts.dial(t, "bad"); err == nil {
			t.Fatal("bad token accepted")
		}
	}
	for range 20 { // warm up pools
		cycle()
	}
	base := settledGoroutines(0)
	for range 300 {
		cycle()
	}
	if n := settledGoroutines(base); n > base+10 {
		t.Fatalf("goroutines grew from %d to %d over 300 cycles", base, n)
	}
}

// An idle websocket connection keeps no goroutine: the net/http goroutine ends after the
// upgrade (our websocket transport is no http.Handler), the socket server's poller
// waits for the client (one goroutine for all), the writer runs only while something
// is queued, and handlers run on workers. go-socket.io's own transport kept four per
// connection; until the poller, one stayed parked in each connection's read.
func TestIdleConnectionKeepsNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller needs epoll")
	}
	ts := startServer(t, nil)
	token := ts.login(t, "carol", "carol123")
	warm, _, err := ts.dial(t, token)
	if err != nil {
		t.Fatal(err)
	}
	warm.established()
	base := settledGoroutines(0)
	const n = 40
	for i := range n {
		c, _, err := ts.dial(t, token)
		if err != nil {
			t.Fatal(err)
		}
		c.established()
		if res := c.ack(1, "jetsocket:subscribe", map[string]string{"channel": "idle-room"}); res["ok"] != true {
			t.Fatalf("subscribe %d: %v", i, res)
		}
		_ = c.ws.WriteMessage(websocket.TextMessage, []byte("2")) // an Engine.IO ping, echoed by the session
	}
	// A few workers may linger after the burst (engine.Workers ends them after 10 s).
	if got := settledGoroutines(base) - base; got > 5 {
		t.Fatalf("%d idle connections hold %d goroutines, want none of their own", n, got)
	}
}

// settledGoroutines waits for the goroutine count to fall to target (or to stop
// falling) and returns it.
func settledGoroutines(target int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		m := runtime.NumGoroutine()
		if (target > 0 && m <= target) || (target == 0 && m == n) {
			return m
		}
		n = m
	}
	return n
}

func TestRunRefusesBadConfig(t *testing.T) {
	err := Run(context.Background(), []string{"-env-file", ""}, func(k string) string {
		return map[string]string{"JWT_SECRET": "short"}[k]
	}, io.Discard, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "config: JWT_SECRET:") {
		t.Fatalf("got %v", err)
	}
}

// eventually polls cond for up to five seconds.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func validSocketID(s string) bool {
	a, b, ok := strings.Cut(s, ".")
	digits := func(x string) bool {
		if x == "" {
			return false
		}
		for _, r := range x {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	return ok && digits(a) && digits(b)
}
