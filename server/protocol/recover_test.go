package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/tokens"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// panicky is a fixture whose developer code panics on the channels and events named
// "boom": a custom event, a guard and every channel hook.
func panicky(t *testing.T) (*fixture, *syncBuffer) {
	t.Helper()
	boom := func(ch string) {
		if strings.Contains(ch, "boom") {
			panic("developer code exploded on " + ch)
		}
	}
	f := newFixture(t, nil, Options{
		Events: []Event{On("explode", func(Request[json.RawMessage]) (any, error) { panic("developer code exploded") })},
		Hooks: []ChannelHooks{
			{Pattern: "*-boom-sub", OnSubscribe: func(_ context.Context, s Subscription) { boom(s.Channel) }},
			{Pattern: "*-boom-unsub", OnUnsubscribe: func(_ context.Context, s Subscription) { boom(s.Channel) }},
			{Pattern: "*-boom-unsub", OnUnsubscribe: func(_ context.Context, s Subscription) {}},
			{Pattern: "private-boom-client", OnClientEvent: func(_ context.Context, ev *ClientEvent) error { boom(ev.Channel); return nil }},
		},
	})
	f.svc.authorizer = channels.NewAuthorizer(&channels.Rules{}, func(r channels.Request) error {
		if r.Channel.Name == "private-boom-guard" || (r.Channel.Name == "private-boom-later" && r.Claims.Name == "Later") {
			boom(r.Channel.Name)
		}
		return nil // allow everything else
	})
	logs := &syncBuffer{}
	f.svc.log = slog.New(slog.NewJSONHandler(logs, nil))
	return f, logs
}

func wantLogged(t *testing.T, logs *syncBuffer, what string) {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, what+" panicked") && strings.Contains(line, `"stack":"goroutine `) && strings.Contains(line, "exploded") {
			return
		}
	}
	t.Fatalf("no %q panic logged with its stack in:\n%s", what, logs.String())
}

// A panic in a developer's event handler is answered as a 500 refusal and logged with
// its stack; the connection goes on.
func TestPanickingEventHandler(t *testing.T) {
	f, logs := panicky(t)
	c := f.connect(t, "1.1", alice)
	ack := f.send(c, "explode", map[string]int{})
	wantRefusal(t, ack, 500, CodeInternal)
	if strings.Contains(ack["error"].(string), "exploded") {
		t.Fatalf("the panic's text reached the client: %v", ack)
	}
	wantLogged(t, logs, "socket event handler")
	if ack := f.send(c, EventPing, nil); ack["pong"] != true {
		t.Fatalf("ping after the panic: %v", ack)
	}
}

// A guard that panics denies, as a 500 with the channel named and subscription_error.
func TestPanickingGuard(t *testing.T) {
	f, logs := panicky(t)
	c := f.connect(t, "1.1", alice)
	ack := f.send(c, EventSubscribe, map[string]string{"channel": "private-boom-guard"})
	wantRefusal(t, ack, 500, CodeInternal)
	if ack["channel"] != "private-boom-guard" {
		t.Fatalf("ack %v does not name the channel", ack)
	}
	if ev := c.emitted(EventSubscriptionError); len(ev) != 1 || ev[0]["status"] != float64(500) {
		t.Fatalf("subscription_error: %v", ev)
	}
	if f.hub.Subscribed(c, "private-boom-guard") {
		t.Fatal("subscribed although the guard panicked")
	}
	wantLogged(t, logs, "channel guard")

	// A guard that panics when a refresh re-checks: the channel ends (500), the refresh
	// itself succeeds.
	if ack := f.send(c, EventSubscribe, map[string]string{"channel": "private-boom-later"}); ack["ok"] != true {
		t.Fatalf("subscribe: %v", ack)
	}
	if ack := f.send(c, EventRefresh, map[string]string{"token": f.token(t, tokens.User{ID: "1", Name: "Later"})}); ack["ok"] != true {
		t.Fatalf("refresh: %v", ack)
	}
	if f.hub.Subscribed(c, "private-boom-later") {
		t.Fatal("still subscribed after the guard panicked on the re-check")
	}
	if ev := c.emitted(EventSubscriptionError); len(ev) != 2 || ev[1]["channel"] != "private-boom-later" || ev[1]["status"] != float64(500) {
		t.Fatalf("subscription_error: %v", ev)
	}
}

// A subscribe hook that panics: the subscribe is answered 500 and undone.
func TestPanickingSubscribeHook(t *testing.T) {
	f, logs := panicky(t)
	c := f.connect(t, "1.1", alice)
	ack := f.send(c, EventSubscribe, map[string]string{"channel": "presence-boom-sub"})
	wantRefusal(t, ack, 500, CodeInternal)
	if ack["channel"] != "presence-boom-sub" {
		t.Fatalf("ack %v does not name the channel", ack)
	}
	if f.hub.Subscribed(c, "presence-boom-sub") {
		t.Fatal("left subscribed behind a 500")
	}
	if m, _ := f.hub.Members(context.Background(), "presence-boom-sub"); len(m) != 0 {
		t.Fatalf("members: %v", m)
	}
	wantLogged(t, logs, "subscribe hook")
	if ack := f.send(c, EventSubscribe, map[string]string{"channel": "news"}); ack["ok"] != true {
		t.Fatalf("subscribe after the panic: %v", ack)
	}
}

// An unsubscribe hook that panics: the unsubscribe is answered 500 but the channel is
// left, the other hooks run; on disconnect every channel is still left and the
// connection's counts released.
func TestPanickingUnsubscribeHook(t *testing.T) {
	f, logs := panicky(t)
	f.cfg.MaxConnsPerUser = 1
	c := f.connect(t, "1.1", alice)
	for _, ch := range []string{"presence-boom-unsub", "private-boom-unsub", "news"} {
		if ack := f.send(c, EventSubscribe, map[string]string{"channel": ch}); ack["ok"] != true {
			t.Fatalf("subscribe %s: %v", ch, ack)
		}
	}
	wantRefusal(t, f.send(c, EventUnsubscribe, map[string]string{"channel": "private-boom-unsub"}), 500, CodeInternal)
	if f.hub.Subscribed(c, "private-boom-unsub") {
		t.Fatal("the channel was not left")
	}
	wantLogged(t, logs, "unsubscribe hook")

	f.svc.Disconnect(c, "gone")
	if n := len(f.hub.ChannelsOf(c)); n != 0 {
		t.Fatalf("%d channels left after the disconnect", n)
	}
	if m, _ := f.hub.Members(context.Background(), "presence-boom-unsub"); len(m) != 0 {
		t.Fatalf("members: %v", m)
	}
	if err := f.svc.Admit(c.Claims(), "192.0.2.1"); err != nil {
		t.Fatalf("the connection's place was not released: %v", err)
	}
}

// A client event hook that panics: the event is refused 500 (ack and jetsocket:error)
// and not relayed.
func TestPanickingClientEventHook(t *testing.T) {
	f, logs := panicky(t)
	c := f.connect(t, "1.1", alice)
	other := f.connect(t, "2.2", tokens.User{ID: "2", Name: "Bob"})
	for _, conn := range []*fakeConn{c, other} {
		if ack := f.send(conn, EventSubscribe, map[string]string{"channel": "private-boom-client"}); ack["ok"] != true {
			t.Fatalf("subscribe: %v", ack)
		}
	}
	ack := f.send(c, "client-hi", map[string]any{"channel": "private-boom-client", "data": 1})
	wantRefusal(t, ack, 500, CodeInternal)
	if ev := c.emitted(EventError); len(ev) != 1 || ev[0]["code"] != CodeInternal {
		t.Fatalf("jetsocket:error: %v", ev)
	}
	other.mu.Lock()
	frames := strings.Join(other.frames, "\n")
	other.mu.Unlock()
	if strings.Contains(frames, "client-hi") {
		t.Fatal("relayed although its hook panicked")
	}
	wantLogged(t, logs, "client event hook")
}

// A refresh that renames the user updates their presence info: new subscribers and
// the members query see the new name; a membership a backend's channel_data vouched
// for keeps its info.
func TestRefreshUpdatesPresenceInfo(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "1.1", alice)
	for _, ch := range []string{"presence-room", "presence-signed"} {
		req := map[string]string{"channel": ch}
		if ch == "presence-signed" {
			req["channel_data"] = `{"user_id":"1","user_info":{"name":"From the backend"}}`
			req["auth"] = channels.ChannelAuth("key", testAppSecret, c.ID(), ch, req["channel_data"])
		}
		if ack := f.send(c, EventSubscribe, req); ack["ok"] != true {
			t.Fatalf("subscribe %s: %v", ch, ack)
		}
	}
	if ack := f.send(c, EventRefresh, map[string]string{"token": f.token(t, tokens.User{ID: "1", Name: "Alice Renamed", Groups: []string{"staff"}})}); ack["ok"] != true {
		t.Fatalf("refresh: %v", ack)
	}
	info := func(ch string) string {
		m, err := f.hub.Members(context.Background(), ch)
		if err != nil || len(m) != 1 {
			t.Fatalf("members of %s: %v %v", ch, m, err)
		}
		return string(m[0].Info)
	}
	if got := info("presence-room"); got != `{"name":"Alice Renamed"}` {
		t.Fatalf("presence-room info after the refresh: %s", got)
	}
	if got := info("presence-signed"); got != `{"name":"From the backend"}` {
		t.Fatalf("presence-signed info after the refresh: %s", got)
	}
	// A new subscriber's ack carries the new name.
	bob := f.connect(t, "2.2", tokens.User{ID: "2", Name: "Bob"})
	ack := f.send(bob, EventSubscribe, map[string]string{"channel": "presence-room"})
	hash, _ := ack["presence"].(map[string]any)["hash"].(map[string]any)
	if hash["1"].(map[string]any)["name"] != "Alice Renamed" {
		t.Fatalf("bob's ack: %v", ack)
	}
}
