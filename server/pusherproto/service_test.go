package pusherproto

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/metrics"
)

const testSecret = "secret-0123456789abcdef"

type env struct {
	svc    *Service
	hub    *hub.Hub
	url    string
	builds atomic.Int32 // Pusher forms built
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with more configuration variables.
func newEnvWith(t *testing.T, more map[string]string) *env {
	t.Helper()
	vars := map[string]string{"APP_KEY": "key", "APP_SECRET": testSecret, "APP_ID": "1", "JWT_SECRET": strings.Repeat("x", 32)}
	for k, v := range more {
		vars[k] = v
	}
	cfg, _, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{}
	e.hub = hub.New(hub.NewMemoryBroker(), hub.NewMemoryPresence(), nil, hub.Hooks{}, log)
	e.hub.SetAltEncoding(func(m hub.Message) []byte {
		e.builds.Add(1)
		return EncodeMessage(m)
	})
	e.svc = New(Options{Config: cfg, Hub: e.hub, Metrics: metrics.New(), Log: log})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.svc.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/app/"), "127.0.0.1")
	}))
	t.Cleanup(func() {
		_ = e.svc.Shutdown(context.Background())
		srv.Close()
	})
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/app/key?protocol=7"
	return e
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

type msg struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    string          `json:"-"` // the data string, or the data object's text (pusher:error)
	UserID  string          `json:"user_id"`
	Raw     json.RawMessage `json:"data"`
}

func (e *env) dial(t *testing.T) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c := &client{t: t, ws: ws}
	m := c.next()
	var est struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if m.Event != EventConnectionEstablished || json.Unmarshal([]byte(m.Data), &est) != nil || est.ActivityTimeout != 120 {
		t.Fatalf("handshake: %+v", m)
	}
	c.id = est.SocketID
	return c
}

func (c *client) next() msg {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m msg
	if err := c.ws.ReadJSON(&m); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if json.Unmarshal(m.Raw, &m.Data) != nil {
		m.Data = string(m.Raw)
	}
	return m
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) subscribe(channel, auth, channelData string) msg {
	c.t.Helper()
	c.send(map[string]any{"event": EventSubscribe, "data": map[string]string{"channel": channel, "auth": auth, "channel_data": channelData}})
	return c.next()
}

func (c *client) closeCode() int {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("no close frame: %v", err)
		}
	}
}

func TestTriggerEncodedOnceForEveryPusherSubscriber(t *testing.T) {
	e := newEnv(t)
	a, b := e.dial(t), e.dial(t)
	for _, c := range []*client{a, b} {
		if m := c.subscribe("news", "", ""); m.Event != EventSubscriptionSucceeded || m.Channel != "news" || m.Data != "{}" {
			t.Fatalf("subscribe: %+v", m)
		}
	}
	if err := e.hub.Publish(context.Background(), hub.Message{Channel: "news", Event: "story", Data: json.RawMessage(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a, b} {
		if m := c.next(); m.Event != "story" || m.Data != `{"n":1}` {
			t.Fatalf("delivery: %+v", m)
		}
	}
	if n := e.builds.Load(); n != 1 {
		t.Fatalf("Pusher form built %d times for one message", n)
	}
}

func TestPresenceWithTheAppsSignature(t *testing.T) {
	e := newEnv(t)
	a, b := e.dial(t), e.dial(t)
	sign := func(c *client, data string) string {
		return channels.ChannelAuth("key", testSecret, c.id, "presence-room", data)
	}
	da := `{"user_id":"a","user_info":{"name":"A"}}`
	m := a.subscribe("presence-room", sign(a, da), da)
	if m.Event != EventSubscriptionSucceeded || m.Data != `{"presence":{"ids":["a"],"hash":{"a":{"name":"A"}},"count":1}}` {
		t.Fatalf("a: %+v", m)
	}
	if m := b.subscribe("presence-room", sign(a, da), da); m.Event != EventSubscriptionError || !strings.Contains(m.Data, `"status":403`) {
		t.Fatalf("a's signature for b: %+v", m)
	}
	db := `{"user_id":"b"}`
	if m := b.subscribe("presence-room", sign(b, db), db); m.Event != EventSubscriptionSucceeded || !strings.Contains(m.Data, `"count":2`) {
		t.Fatalf("b: %+v", m)
	}
	if m := a.next(); m.Event != EventMemberAdded || m.Data != `{"user_id":"b","user_info":{}}` {
		t.Fatalf("member_added: %+v", m)
	}
	b.send(map[string]any{"event": "client-hi", "channel": "presence-room", "data": map[string]int{"x": 1}})
	if m := a.next(); m.Event != "client-hi" || m.UserID != "b" || m.Data != `{"x":1}` {
		t.Fatalf("client event: %+v", m)
	}
	_ = b.ws.Close()
	if m := a.next(); m.Event != EventMemberRemoved || m.Data != `{"user_id":"b"}` {
		t.Fatalf("member_removed: %+v", m)
	}
}

func TestCloseCodes(t *testing.T) {
	e := newEnv(t)
	a := e.dial(t)
	ud := `{"id":"u7"}`
	a.send(map[string]any{"event": EventSignin, "data": map[string]string{"auth": channels.UserAuth("key", testSecret, a.id, ud), "user_data": ud}})
	if m := a.next(); m.Event != EventSigninSuccess {
		t.Fatalf("signin: %+v", m)
	}
	if err := e.hub.Publish(context.Background(), hub.Message{Channel: hub.UserChannel("u7"), Terminate: true}); err != nil {
		t.Fatal(err)
	}
	if code := a.closeCode(); code != CloseUnauthorized {
		t.Fatalf("terminated: close %d", code)
	}
	b := e.dial(t)
	go func() { _ = e.svc.Shutdown(context.Background()) }()
	if code := b.closeCode(); code != CloseShuttingDown {
		t.Fatalf("shutdown: close %d", code)
	}
	// A connection after the shutdown began is refused the protocol's way.
	ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	late := &client{t: t, ws: ws}
	if m := late.next(); m.Event != EventError || !strings.Contains(m.Data, `"code":4200`) {
		t.Fatalf("late: %+v", m)
	}
	if code := late.closeCode(); code != CloseShuttingDown {
		t.Fatalf("late: close %d", code)
	}
}

func TestUnknownKey(t *testing.T) {
	e := newEnv(t)
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "/app/key", "/app/nope", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := &client{t: t, ws: ws}
	if m := c.next(); m.Event != EventError || !strings.Contains(m.Data, `"code":4001`) {
		t.Fatalf("%+v", m)
	}
	if code := c.closeCode(); code != CloseUnknownApp {
		t.Fatalf("close %d", code)
	}
}

// MAX_CONNECTIONS_PER_USER counts signed-in Pusher connections (with the user's socket.io
// ones, through the shared counter): a sign-in over it is refused and the connection stays
// anonymous; a closed one gives its place back.
func TestSigninCountsAgainstConnectionsPerUser(t *testing.T) {
	e := newEnvWith(t, map[string]string{"MAX_CONNECTIONS_PER_USER": "1"})
	ud := `{"id":"u1"}`
	signin := func(c *client) msg {
		c.send(map[string]any{"event": EventSignin, "data": map[string]string{"auth": channels.UserAuth("key", testSecret, c.id, ud), "user_data": ud}})
		return c.next()
	}
	a := e.dial(t)
	if m := signin(a); m.Event != EventSigninSuccess {
		t.Fatalf("first sign-in: %+v", m)
	}
	b := e.dial(t)
	if m := signin(b); m.Event != EventError || !strings.Contains(m.Data, "too many open connections") {
		t.Fatalf("second sign-in of u1: %+v", m)
	}
	_ = a.ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.svc.userConns.Count("u1") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection kept its place")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if m := signin(b); m.Event != EventSigninSuccess {
		t.Fatalf("sign-in after the other closed: %+v", m)
	}
}
