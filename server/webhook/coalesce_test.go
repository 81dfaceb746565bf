package webhook

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestCoalesceSendsOnePerChannelAndWindow(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	sent := make(chan struct{}, 10)
	send := Coalesce(20*time.Millisecond, CacheMiss, func(ev Event) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		sent <- struct{}{}
	})
	for range 5 {
		send(Event{Name: CacheMiss, Channel: "cache-a"})
	}
	send(Event{Name: CacheMiss, Channel: "cache-b"})
	send(Event{Name: ChannelOccupied, Channel: "cache-a"}) // other names pass straight through
	for range 3 {
		<-sent
	}
	mu.Lock()
	if got[0].Name != ChannelOccupied || len(got) != 3 {
		t.Fatalf("got %+v, want channel_occupied at once then one cache_miss per channel", got)
	}
	mu.Unlock()
	// A new window sends again.
	send(Event{Name: CacheMiss, Channel: "cache-a"})
	<-sent
	select {
	case <-sent:
		t.Fatal("one event sent twice")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSubscriptionCountShape(t *testing.T) {
	zero := 0
	b, err := json.Marshal(Event{Name: SubscriptionCount, Channel: "c", SubscriptionCount: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"name":"subscription_count","channel":"c","subscription_count":0}` {
		t.Fatalf("shape: %s", b)
	}
	b, _ = json.Marshal(Event{Name: CacheMiss, Channel: "cache-c"})
	if string(b) != `{"name":"cache_miss","channel":"cache-c"}` {
		t.Fatalf("shape: %s", b)
	}
}
