package pusherproto

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
	"github.com/jetsocket/jetsocket/server/wire"
)

func TestLastEventFromHistory(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := history.Policy{Default: history.Limits{Size: 10, TTL: time.Minute}}
	h := hub.New(hub.NewMemoryBrokerWithHistory(history.NewMemory(), policy), hub.NewMemoryPresence(), nil, hub.Hooks{}, log)
	s := &Service{hub: h, log: log}
	ctx := context.Background()
	if got := s.lastEvent(ctx, "cache-x"); got != nil {
		t.Fatalf("before any publication: %s", got)
	}
	for _, v := range []string{`1`, `2`} {
		if err := h.Publish(ctx, hub.Message{Channel: "cache-x", Event: "e", Data: json.RawMessage(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(s.lastEvent(ctx, "cache-x")); got != `{"event":"e","channel":"cache-x","data":"2"}` {
		t.Fatalf("last event: %s", got)
	}
}

// webhookRecorder collects a Service's webhooks.
type webhookRecorder struct {
	mu  sync.Mutex
	evs []webhook.Event
}

func (r *webhookRecorder) send(ev webhook.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *webhookRecorder) all() []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func TestCacheMissSendsTheEventAndTheWebhook(t *testing.T) {
	e := newEnv(t)
	rec := &webhookRecorder{}
	e.svc.webhooks = rec.send // before any connection
	c := e.dial(t)
	if m := c.subscribe("cache-x", "", ""); m.Event != EventSubscriptionSucceeded {
		t.Fatalf("subscribe: %+v", m)
	}
	if m := c.next(); m.Event != EventCacheMiss || m.Channel != "cache-x" {
		t.Fatalf("after the subscribe: %+v", m)
	}
	// The webhook is sent before the event is queued, so it is there now.
	if got := rec.all(); len(got) != 1 || got[0] != (webhook.Event{Name: webhook.CacheMiss, Channel: "cache-x"}) {
		t.Fatalf("webhooks: %+v", got)
	}
}

func TestSubscriptionCountWebhookCarriesTheSettledCount(t *testing.T) {
	e := newEnv(t)
	rec := &webhookRecorder{}
	e.svc.webhooks = rec.send
	c := e.dial(t)
	if m := c.subscribe("news", "", ""); m.Event != EventSubscriptionSucceeded {
		t.Fatalf("subscribe: %+v", m)
	}
	e.svc.sendCount("news")
	e.svc.sendCount("empty")
	got := rec.all()
	if len(got) != 2 || got[0].Name != webhook.SubscriptionCount || got[0].Channel != "news" || *got[0].SubscriptionCount != 1 ||
		got[1].Channel != "empty" || *got[1].SubscriptionCount != 0 {
		t.Fatalf("webhooks: %+v", got)
	}
}

// nopConn is a hub subscriber that drops what it is sent.
type nopConn struct {
	id    string
	chans *hub.ConnChannels
}

func (c nopConn) ID() string                     { return c.id }
func (c nopConn) UserID() string                 { return "" }
func (c nopConn) SendFrame(wire.Frame) bool      { return true }
func (c nopConn) Close(string)                   {}
func (c nopConn) HubChannels() *hub.ConnChannels { return c.chans }

func TestSubscriptionCountIsNotACacheChannelsLastEvent(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := history.Policy{Default: history.Limits{Size: 10, TTL: time.Minute}}
	h := hub.New(hub.NewMemoryBrokerWithHistory(history.NewMemory(), policy), hub.NewMemoryPresence(), nil, hub.Hooks{}, log)
	s := &Service{hub: h, log: log, cfg: &config.Config{SubscriptionCount: true}, webhooks: func(webhook.Event) {}}
	ctx := context.Background()
	if _, err := h.Subscribe(ctx, nopConn{"1.1", &hub.ConnChannels{}}, "cache-x", nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(ctx, hub.Message{Channel: "cache-x", Event: "e", Data: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	s.sendCount("cache-x")
	if got := string(s.lastEvent(ctx, "cache-x")); got != `{"event":"e","channel":"cache-x","data":"1"}` {
		t.Fatalf("last event after a count: %s", got)
	}
}
