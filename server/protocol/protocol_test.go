package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/connstate"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/metrics"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/server/trigger"
	"github.com/jetsocket/jetsocket/server/wire"
	"github.com/jetsocket/jetsocket/tokens"
)

// fakeConn is a connection without a socket: it records what it is sent.
type fakeConn struct {
	id     string
	claims *tokens.Claims
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	emits  []emitted
	frames []string
	closed string

	state connstate.State
	chans hub.ConnChannels
}

type emitted struct {
	event   string
	payload json.RawMessage
}

func newFakeConn(id string, claims *tokens.Claims) *fakeConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeConn{id: id, claims: claims, ctx: ctx, cancel: cancel}
}

func (c *fakeConn) ConnState() *connstate.State    { return &c.state }
func (c *fakeConn) HubChannels() *hub.ConnChannels { return &c.chans }
func (c *fakeConn) ID() string                     { return c.id }
func (c *fakeConn) UserID() string                 { return c.Claims().UserID() }
func (c *fakeConn) IP() string                     { return "192.0.2.1" }
func (c *fakeConn) Context() context.Context       { return c.ctx }
func (c *fakeConn) Claims() *tokens.Claims         { c.mu.Lock(); defer c.mu.Unlock(); return c.claims }
func (c *fakeConn) SetClaims(cl *tokens.Claims)    { c.mu.Lock(); c.claims = cl; c.mu.Unlock() }
func (c *fakeConn) CloseAfterFlush(reason string)  { c.Close(reason) }
func (c *fakeConn) Close(reason string) {
	c.mu.Lock()
	c.closed = reason
	c.mu.Unlock()
	c.cancel()
}
func (c *fakeConn) SendFrame(f wire.Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, string(f.Text()))
	return true
}
func (c *fakeConn) Emit(event string, payload any) bool {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emits = append(c.emits, emitted{event, b})
	return true
}
func (c *fakeConn) Error(code, message string) {
	c.Emit(EventError, map[string]string{"code": code, "message": message})
}

// emitted returns the payloads of event sent so far.
func (c *fakeConn) emitted(event string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, e := range c.emits {
		if e.event == event {
			var m map[string]any
			_ = json.Unmarshal(e.payload, &m)
			out = append(out, m)
		}
	}
	return out
}

type fixture struct {
	svc *Service
	hub *hub.Hub
	cfg *config.Config
}

func newFixture(t testing.TB, env map[string]string, o Options) *fixture {
	t.Helper()
	return newFixtureWith(t, env, o, hub.NewMemoryPresence())
}

func newFixtureWith(t testing.TB, env map[string]string, o Options, presence hub.Presence) *fixture {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["JWT_SECRET"] = "0123456789abcdef0123456789abcdef"
	env["APP_KEY"], env["APP_SECRET"] = "key", testAppSecret
	cfg, _, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := hub.New(hub.NewMemoryBrokerWithHistory(history.NewMemory(), cfg.History), presence, nil, hub.Hooks{}, log)
	tm, err := tokens.NewManager(tokens.Config{Secret: cfg.JWTSecret, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	o.Settings, o.Hub, o.Verifier, o.Metrics, o.Log = settingsOf(cfg), h, tm, metrics.New(), log
	o.Triggers = trigger.New(h, cfg.EncryptionMasterKey, cfg.MaxPayloadBytes)
	o.Authorizer = channels.NewAuthorizer(&channels.Rules{Roles: cfg.ChannelRoles}, channels.Delegated(cfg.AppKey, cfg.AppSecret))
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, hub: h, cfg: cfg}
}

func (f *fixture) token(t testing.TB, u tokens.User) string {
	t.Helper()
	tm, _ := tokens.NewManager(tokens.Config{Secret: f.cfg.JWTSecret, TTL: time.Hour})
	tok, _, err := tm.Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) connect(t *testing.T, id string, u tokens.User) *fakeConn {
	t.Helper()
	tm, _ := tokens.NewManager(tokens.Config{Secret: f.cfg.JWTSecret, TTL: time.Hour})
	claims, err := tm.Verify(f.token(t, u))
	if err != nil {
		t.Fatal(err)
	}
	c := newFakeConn(id, claims)
	f.svc.Connect(c)
	t.Cleanup(func() { c.cancel(); f.svc.Disconnect(c, "test over") })
	return c
}

// send dispatches event with payload (nil: no argument) and returns the ack as JSON.
func (f *fixture) send(c *fakeConn, event string, payload any) map[string]any {
	var args []json.RawMessage
	if payload != nil {
		b, _ := json.Marshal(payload)
		args = []json.RawMessage{b}
	}
	ack := f.svc.Dispatch(c, event, args)
	// As the socket server does: the ack first, then what follows it.
	if a, ok := ack.(socket.AckThen); ok {
		ack = a.Ack
		defer a.Then()
	}
	b, _ := json.Marshal(ack)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func wantRefusal(t *testing.T, ack map[string]any, status int, code string) {
	t.Helper()
	if ack["ok"] != false || ack["status"] != float64(status) || ack["code"] != code || ack["error"] == "" || ack["error"] == nil {
		t.Fatalf("ack %v: want {ok:false, status:%d, code:%s, error}", ack, status, code)
	}
	if _, has := ack["message"]; has {
		t.Fatalf("ack %v has the old second shape's message field", ack)
	}
}

const testAppSecret = "0123456789abcdef"

var alice = tokens.User{ID: "1", Name: "Alice", Groups: []string{"staff"}}

func TestUnknownEventIsRefusedInTheOneShape(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "1.1", alice)
	wantRefusal(t, f.send(c, "no-such-event", map[string]int{"a": 1}), 404, CodeUnknownEvent)
	if errs := c.emitted(EventError); len(errs) != 1 || errs[0]["code"] != CodeUnknownEvent {
		t.Fatalf("jetsocket:error: %v", errs)
	}
	// The connection keeps working.
	if ack := f.send(c, EventPing, nil); ack["pong"] != true {
		t.Fatalf("ping after an unknown event: %v", ack)
	}
}

func TestSubscribeRefusalNamesTheChannelAndIsEmitted(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "1.1", alice)
	ack := f.send(c, EventSubscribe, map[string]string{"channel": "private-user-2"})
	wantRefusal(t, ack, 403, "forbidden")
	if ack["channel"] != "private-user-2" {
		t.Fatalf("ack %v does not name the channel", ack)
	}
	ev := c.emitted(EventSubscriptionError)
	if len(ev) != 1 || ev[0]["channel"] != "private-user-2" || ev[0]["status"] != float64(403) || ev[0]["code"] != "forbidden" {
		t.Fatalf("subscription_error: %v", ev)
	}
	// A payload that is not an object: 400, and the ack still has its channel field.
	ack = f.send(c, EventSubscribe, "news")
	wantRefusal(t, ack, 400, CodeInvalidPayload)
	if ch, has := ack["channel"]; !has || ch != "" {
		t.Fatalf("ack %v: want channel \"\"", ack)
	}
}

// A client cannot take itself off its user's channel (or a sign-in's), which would put
// it out of reach of sendToUser and terminate_connections.
func TestInternalChannelsAreNotTheClients(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "1.1", alice)
	own := hub.UserChannel("1")
	for _, ev := range []string{EventUnsubscribe, EventSubscribe} {
		ack := f.send(c, ev, map[string]string{"channel": own})
		wantRefusal(t, ack, 403, CodeInternalChannel)
		if ack["channel"] != own {
			t.Fatalf("%s ack %v does not name the channel", ev, ack)
		}
	}
	if !f.hub.Subscribed(c, own) {
		t.Fatal("the connection left its user's channel")
	}
	// terminate_connections still reaches it.
	if err := f.hub.Publish(context.Background(), hub.Message{Channel: own, Terminate: true}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed != hub.ReasonTerminated {
		t.Fatalf("terminate did not close the connection (closed %q)", closed)
	}
}

func TestRefreshRechecksSubscriptions(t *testing.T) {
	var left []string
	var mu sync.Mutex
	f := newFixture(t, nil, Options{Hooks: []ChannelHooks{{Pattern: "*", OnUnsubscribe: func(_ context.Context, s Subscription) {
		mu.Lock()
		left = append(left, s.Channel)
		mu.Unlock()
	}}}})
	c := f.connect(t, "1.1", alice)
	bob := f.connect(t, "2.2", tokens.User{ID: "2", Name: "Bob", Groups: []string{"staff"}})
	// A channel granted by a backend's signature stays: it is re-checked with it.
	signed := "private-backoffice"
	for _, ch := range []string{"news", "private-group-staff", "presence-group-staff", signed} {
		req := map[string]string{"channel": ch}
		if ch == signed {
			req["auth"] = channels.ChannelAuth("key", testAppSecret, c.ID(), ch, "")
		}
		if ack := f.send(c, EventSubscribe, req); ack["ok"] != true {
			t.Fatalf("subscribe %s: %v", ch, ack)
		}
	}
	if ack := f.send(bob, EventSubscribe, map[string]string{"channel": "presence-group-staff"}); ack["ok"] != true {
		t.Fatalf("bob: %v", ack)
	}

	// The same user, no longer in staff.
	ack := f.send(c, EventRefresh, map[string]string{"token": f.token(t, tokens.User{ID: "1", Name: "Alice"})})
	if ack["ok"] != true {
		t.Fatalf("refresh: %v", ack)
	}
	ended := map[string]bool{}
	for _, ev := range c.emitted(EventSubscriptionError) {
		if ev["status"] != float64(403) {
			t.Fatalf("subscription_error %v: want 403", ev)
		}
		ended[ev["channel"].(string)] = true
	}
	if len(ended) != 2 || !ended["private-group-staff"] || !ended["presence-group-staff"] {
		t.Fatalf("subscription_error for %v: want the two staff channels", ended)
	}
	for ch, want := range map[string]bool{"news": true, signed: true, hub.UserChannel("1"): true, "private-group-staff": false, "presence-group-staff": false} {
		if got := f.hub.Subscribed(c, ch); got != want {
			t.Errorf("subscribed to %s: %v, want %v", ch, got, want)
		}
	}
	// The others on the presence channel see the member leave.
	bob.mu.Lock()
	frames := strings.Join(bob.frames, "\n")
	bob.mu.Unlock()
	if !strings.Contains(frames, EventMemberRemoved) {
		t.Fatalf("bob did not get member_removed: %s", frames)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(left, " ") != "private-group-staff presence-group-staff" && strings.Join(left, " ") != "presence-group-staff private-group-staff" {
		t.Fatalf("OnUnsubscribe saw %v", left)
	}
}

type chatMsg struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// A developer's event goes through the same decoding, mapping and ack shape as the
// built-ins, with the connection's context.
func TestCustomEvent(t *testing.T) {
	var got Request[chatMsg]
	var deadline bool
	var ctxClaims *tokens.Claims
	f := newFixture(t, nil, Options{Events: []Event{On("chat:send", func(r Request[chatMsg]) (any, error) {
		got = r
		_, deadline = r.Ctx.Deadline()
		ctxClaims, _ = tokens.FromContext(r.Ctx)
		switch r.Payload.Text {
		case "":
			return nil, errs.New(errs.Invalid, "empty_message", "say something")
		case "boom":
			return nil, errors.New("database password wrong")
		}
		return map[string]any{"ok": true, "len": len(r.Payload.Text)}, nil
	})}})
	c := f.connect(t, "1.1", alice)

	if ack := f.send(c, "chat:send", chatMsg{"lobby", "hello"}); ack["ok"] != true || ack["len"] != float64(5) {
		t.Fatalf("ack %v", ack)
	}
	if got.Payload != (chatMsg{"lobby", "hello"}) || got.SocketID != "1.1" || got.UserID != "1" || got.Claims.Name != "Alice" || got.Event != "chat:send" {
		t.Fatalf("request %+v", got)
	}
	if !deadline || ctxClaims == nil || ctxClaims.UserID() != "1" {
		t.Fatalf("context: deadline %v, claims %v", deadline, ctxClaims)
	}
	if got.Trigger == nil || got.Channels == nil {
		t.Fatal("the request does not reach the trigger API and the queries")
	}
	wantRefusal(t, f.send(c, "chat:send", chatMsg{"lobby", ""}), 400, "empty_message")
	ack := f.send(c, "chat:send", chatMsg{"lobby", "boom"})
	wantRefusal(t, ack, 500, CodeInternal)
	if strings.Contains(ack["error"].(string), "password") {
		t.Fatalf("internal detail sent to the client: %v", ack)
	}
	got = Request[chatMsg]{}
	wantRefusal(t, f.send(c, "chat:send", "not an object"), 400, CodeInvalidPayload)
	if got.Event != "" {
		t.Fatal("the handler ran on a payload that did not decode")
	}
	if _, has := f.send(c, "chat:send", chatMsg{"lobby", ""})["channel"]; has {
		t.Fatal("a refusal of an event that is not about a channel names one")
	}

	// The context ends with the connection.
	c.cancel()
	f.send(c, "chat:send", chatMsg{"lobby", "after"})
	if got.Ctx.Err() == nil {
		t.Fatal("the request context outlives its connection")
	}
}

func TestCustomEventNames(t *testing.T) {
	ok := func(Request[json.RawMessage]) (any, error) { return nil, nil }
	for _, events := range [][]Event{
		{On("jetsocket:subscribe", ok)},
		{On("jetsocket:mine", ok)},
		{On("client-mine", ok)},
		{On("chat:send", ok), On("chat:send", ok)},
		{On("", ok)},
		{{}},
	} {
		env := map[string]string{"JWT_SECRET": "0123456789abcdef0123456789abcdef"}
		cfg, _, _ := config.Load(func(k string) string { return env[k] })
		log := slog.New(slog.DiscardHandler)
		_, err := New(Options{Settings: settingsOf(cfg), Events: events, Metrics: metrics.New(), Log: log,
			Hub: hub.New(hub.NewMemoryBroker(), hub.NewMemoryPresence(), nil, hub.Hooks{}, log)})
		if err == nil {
			t.Errorf("events %q accepted", events[len(events)-1].Name())
		}
	}
}

// slowPresence applies a Join of channel slow at once but answers only when released,
// and then fails if its context was cancelled meanwhile: a Redis call whose reply is
// lost. Other channels' joins (the online channel Connect joins) pass straight through:
// gating every Join would block Connect itself and close entered twice.
type slowPresence struct {
	hub.Presence
	slow             string
	entered, release chan struct{}
}

func (p *slowPresence) Join(ctx context.Context, channel, socketID string, m hub.Member, max int) (bool, error) {
	first, err := p.Presence.Join(ctx, channel, socketID, m, max)
	if channel != p.slow {
		return first, err
	}
	close(p.entered)
	<-p.release
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return first, err
}

// A connection that closes while its subscribe is joining does not leave the join half
// made: the member is recorded on this node too, and so leaves on disconnect.
func TestSubscribeIsNotCutHalfWayByTheConnectionClosing(t *testing.T) {
	p := &slowPresence{Presence: hub.NewMemoryPresence(), slow: "presence-x", entered: make(chan struct{}), release: make(chan struct{})}
	f := newFixtureWith(t, nil, Options{}, p)
	c := newFakeConn("1.1", nil)
	tm, _ := tokens.NewManager(tokens.Config{Secret: f.cfg.JWTSecret, TTL: time.Hour})
	c.claims, _ = tm.Verify(f.token(t, alice))
	f.svc.Connect(c)
	acked := make(chan map[string]any, 1)
	go func() { acked <- f.send(c, EventSubscribe, map[string]string{"channel": "presence-x"}) }()
	<-p.entered
	c.Close("client gone")
	close(p.release)
	<-acked
	f.svc.Disconnect(c, "client gone")
	if m, _ := f.hub.Members(context.Background(), "presence-x"); len(m) != 0 {
		t.Fatalf("members after the disconnect: %v", m)
	}
}

// settingsOf copies cfg's fields of Settings' names, as the server fills them
// (server.TestProtocolSettingsCarryTheConfig checks the server's copy).
func settingsOf(cfg *config.Config) Settings {
	var s Settings
	sv, cv := reflect.ValueOf(&s).Elem(), reflect.ValueOf(cfg).Elem()
	for i := 0; i < sv.NumField(); i++ {
		sv.Field(i).Set(cv.FieldByName(sv.Type().Field(i).Name))
	}
	return s
}
