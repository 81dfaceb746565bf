package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

// loginFrom posts a wrong password with extra headers and returns the status.
func loginFrom(t *testing.T, ts *testServer, headers map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.base+"/login", strings.NewReader(`{"username":"bob","password":"nope"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Behind a trusted proxy the client address comes from the one header the operator
// names; the other cannot be used to rotate one's address past the login limit.
func TestClientAddressFromOneHeader(t *testing.T) {
	for _, tt := range []struct {
		header, other string // the configured header, and one that must be ignored
		env           string
	}{
		{"X-Forwarded-For", "X-Real-IP", ""}, // the default
		{"X-Real-IP", "X-Forwarded-For", "X-Real-IP"},
	} {
		t.Run(tt.header, func(t *testing.T) {
			ts := startServer(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1", "LOGIN_RATE_LIMIT": "2/1h", "CLIENT_IP_HEADER": tt.env})
			for i := range 3 {
				code := loginFrom(t, ts, map[string]string{tt.other: fmt.Sprintf("203.0.113.%d", i+1)})
				if want := map[bool]int{true: 401, false: 429}[i < 2]; code != want {
					t.Fatalf("%s rotated, attempt %d: %d, want %d (the header must be ignored)", tt.other, i+1, code, want)
				}
			}
			// The named header does tell clients apart: a new address has its own budget.
			if code := loginFrom(t, ts, map[string]string{tt.header: "198.51.100.7"}); code != 401 {
				t.Fatalf("%s of another client: %d, want 401", tt.header, code)
			}
			if !strings.Contains(ts.out.String(), "ip=198.51.100.7") {
				t.Fatalf("the log does not name the resolved client:\n%s", ts.out)
			}
		})
	}
}

// dialFrom opens a websocket whose request carries headers (a proxy's) and extra query.
func (ts *testServer) dialFrom(t *testing.T, token string, headers http.Header, extraQuery string) (*wsClient, *http.Response, error) {
	t.Helper()
	u := "ws://" + ts.host + "/socket.io/?EIO=3&transport=websocket&token=" + url.QueryEscape(token) + extraQuery
	ws, res, err := websocket.DefaultDialer.Dial(u, headers)
	if err != nil {
		return nil, res, err
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}, res, nil
}

// waitLog waits until the server's log contains s.
func (ts *testServer) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(ts.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never had %q:\n%s", s, ts.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Behind a trusted proxy MAX_CONNECTIONS_PER_IP counts the client address the proxy
// names, not the proxy: many clients behind one proxy are not locked out together, one
// client is still limited, a closed connection frees its place, and the logs name the
// address that was counted. A client cannot choose the address itself.
func TestConnectionsPerClientAddressBehindAProxy(t *testing.T) {
	ts := startServer(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1", "MAX_CONNECTIONS_PER_IP": "2", "MAX_CONNECTIONS_PER_USER": "0"})
	tok := ts.login(t, "carol", "carol123")
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

	var first *wsClient
	for i, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1"} {
		c, res, err := ts.dialFrom(t, tok, from(ip), "")
		if err != nil {
			t.Fatalf("connection %d from %s refused: %v %v", i+1, ip, res, err)
		}
		c.established()
		if i == 0 {
			first = c
		}
	}
	ts.waitLog(t, "ip=203.0.113.3")
	_, res, err := ts.dialFrom(t, tok, from("203.0.113.1"), "")
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection from one client: %v %v", res, err)
	}
	ts.waitLog(t, `msg="socket refused" reason=too_many_connections user_id=3 ip=203.0.113.1`)

	// Closing one frees its place (it was released under the address it was counted by).
	first.ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := ts.dialFrom(t, tok, from("203.0.113.1"), "")
		if err == nil {
			c.established()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the place of a closed connection was never freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A client's own claim to an address is replaced by the resolved one.
	c, _, err := ts.dialFrom(t, tok, from("203.0.113.9"), "&jetsocket_client_ip=198.51.100.66")
	if err != nil {
		t.Fatal(err)
	}
	c.established()
	ts.waitLog(t, "ip=203.0.113.9")
	if !regexp.MustCompile(`msg="socket connected" socket_id=\S+ user_id=3 ip=203\.0\.113\.9 `).MatchString(ts.out.String()) {
		t.Fatalf("the connection's log line does not name the counted address:\n%s", ts.out)
	}
	if strings.Contains(ts.out.String(), "198.51.100.66") {
		t.Fatal("a client chose the address it is counted and logged by")
	}
}

// A webhook receiver that does not answer must not fail a graceful shutdown: after the
// budget the server stops cleanly (exit 0) and logs what it abandoned.
func TestShutdownWithPendingWebhooksSucceeds(t *testing.T) {
	arrived := make(chan struct{}, 10)
	hold := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer receiver.Close()
	defer close(hold)
	ts := startServer(t, map[string]string{"WEBHOOK_URL": receiver.URL + "/hook?token=tok-secret-9", "SHUTDOWN_TIMEOUT": "1s"})
	c, _, err := ts.dial(t, ts.login(t, "bob", "bob123"))
	if err != nil {
		t.Fatal(err)
	}
	c.established()
	if ack := c.ack(1, "jetsocket:subscribe", map[string]string{"channel": "news"}); ack["ok"] != true {
		t.Fatalf("subscribe: %v", ack)
	}
	select {
	case <-arrived: // channel_occupied is in flight, never answered
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
	}
	if err := ts.stop(); err != nil {
		t.Fatalf("shutdown with a webhook pending failed: %v\n%s", err, ts.out)
	}
	out := ts.out.String()
	if !strings.Contains(out, `msg="webhook batches not delivered"`) || !strings.Contains(out, "outcome=abandoned") {
		t.Fatalf("the shutdown does not say what it abandoned:\n%s", out)
	}
	if strings.Contains(out, "tok-secret-9") {
		t.Fatal("the webhook URL's token reached the logs")
	}
}
