package protocol

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
)

func TestCacheChannelSubscribeGetsTheLastEventOrACacheMiss(t *testing.T) {
	var mu sync.Mutex
	var hooks []webhook.Event
	f := newFixture(t, map[string]string{"CHANNEL_HISTORY": "cache-off=0"}, Options{Webhooks: func(ev webhook.Event) {
		mu.Lock()
		hooks = append(hooks, ev)
		mu.Unlock()
	}})
	a := f.connect(t, "1.1", alice)
	if ack := f.send(a, EventSubscribe, map[string]string{"channel": "cache-news"}); ack["ok"] != true {
		t.Fatalf("subscribe: %v", ack)
	}
	if got := a.emitted(EventCacheMiss); len(got) != 1 || got[0]["channel"] != "cache-news" {
		t.Fatalf("cache_miss: %v", got)
	}
	mu.Lock()
	if len(hooks) != 1 || hooks[0] != (webhook.Event{Name: webhook.CacheMiss, Channel: "cache-news"}) {
		t.Fatalf("webhooks: %+v", hooks)
	}
	mu.Unlock()

	ctx := context.Background()
	for _, v := range []string{`{"n":1}`, `{"n":2}`} {
		if err := f.hub.Publish(ctx, hub.Message{Channel: "presence-cache-news", Event: "story", Data: json.RawMessage(v)}); err != nil {
			t.Fatal(err)
		}
	}
	b := f.connect(t, "1.2", alice)
	if ack := f.send(b, EventSubscribe, map[string]string{"channel": "presence-cache-news"}); ack["ok"] != true {
		t.Fatalf("subscribe: %v", ack)
	}
	got := b.emitted("story")
	if len(got) != 1 || got[0]["channel"] != "presence-cache-news" || got[0]["data"].(map[string]any)["n"] != float64(2) {
		t.Fatalf("last event: %v", got)
	}
	if miss := b.emitted(EventCacheMiss); len(miss) != 0 {
		t.Fatalf("cache_miss with an event: %v", miss)
	}

	// History off for the channel: always a miss. A plain channel gets neither.
	c := f.connect(t, "1.3", alice)
	f.hub.Publish(ctx, hub.Message{Channel: "cache-off", Event: "story", Data: json.RawMessage(`1`)})
	f.send(c, EventSubscribe, map[string]string{"channel": "cache-off"})
	f.send(c, EventSubscribe, map[string]string{"channel": "news"})
	if miss := c.emitted(EventCacheMiss); len(miss) != 1 || miss[0]["channel"] != "cache-off" {
		t.Fatalf("cache_miss: %v", miss)
	}
	if got := c.emitted("story"); len(got) != 0 {
		t.Fatalf("events: %v", got)
	}
}
