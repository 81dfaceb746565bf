package hubtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// HistoryFactory returns a new Broker that keeps history under p (a hub.Historian);
// it closes it with t.Cleanup.
type HistoryFactory func(t *testing.T, p history.Policy) hub.Broker

// RunHistory runs the contract of a Broker that keeps history: the memory one and the
// Redis one meet it, so that the hub's recovery (which relies on it) works on both.
func RunHistory(t *testing.T, f HistoryFactory) {
	policy := history.Policy{
		Default: history.Limits{Size: 100, TTL: time.Minute},
		Rules:   []history.Rule{{Pattern: "off-*"}},
	}
	t.Run("PositionsInOrderAndInTheHistory", func(t *testing.T) { positions(t, f(t, policy)) })
	t.Run("OnlyPublicationsArePositioned", func(t *testing.T) { unpositioned(t, f(t, policy)) })
	t.Run("ConcurrentPublishersDeliverInOffsetOrder", func(t *testing.T) { concurrentOrder(t, f(t, policy)) })
}

// recorder collects delivered messages.
type recorder struct {
	mu   sync.Mutex
	msgs []hub.Message
}

func (r *recorder) deliver(m hub.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// wait waits (delivery may go through another process) until n messages arrived.
func (r *recorder) wait(t *testing.T, n int) []hub.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]hub.Message(nil), r.msgs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func historian(t *testing.T, b hub.Broker) hub.Historian {
	t.Helper()
	h, ok := b.(hub.Historian)
	if !ok {
		t.Fatalf("%T keeps no history (not a hub.Historian)", b)
	}
	return h
}

func positions(t *testing.T, b hub.Broker) {
	var r recorder
	b.Start(r.deliver)
	Subscribe(t, b, "news")
	h := historian(t, b)
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		m := hub.Message{Channel: "news", Event: "e", Data: json.RawMessage(strconv.Itoa(i))}
		if i == 3 {
			m.UserID, m.Event = "u1", "client-x"
		}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := r.wait(t, 5)
	epoch := got[0].Epoch
	for i, m := range got {
		if m.Offset != uint64(i+1) || m.Epoch != epoch || epoch == "" || string(m.Data) != strconv.Itoa(i+1) {
			t.Fatalf("delivery %d: %+v", i, m)
		}
	}
	res, err := h.Read(ctx, "news", history.Query{}, h.HistoryLimits("news"))
	if err != nil || res.Position != (history.Position{Epoch: epoch, Offset: 5}) || len(res.Publications) != 5 {
		t.Fatalf("history: %+v %v", res, err)
	}
	if p := res.Publications[2]; p.Offset != 3 || p.Event != "client-x" || p.UserID != "u1" || string(p.Data) != "3" {
		t.Fatalf("kept as published: %+v", p)
	}
	if l := h.HistoryLimits("off-x"); l.On() {
		t.Fatalf("the policy is the broker's: %+v", l)
	}
}

func unpositioned(t *testing.T, b hub.Broker) {
	var r recorder
	b.Start(r.deliver)
	Subscribe(t, b, "off-x", "presence-p", hub.UserChannel("u"))
	ctx := context.Background()
	sent := []hub.Message{
		{Channel: "off-x", Event: "e", Data: json.RawMessage(`1`)},
		{Channel: "presence-p", Event: hub.EventMemberAdded, Payload: json.RawMessage(`{"channel":"presence-p","user_id":"u"}`)},
		{Channel: hub.UserChannel("u"), Event: "note", Data: json.RawMessage(`1`)},
		{Channel: hub.UserChannel("u"), Terminate: true},
	}
	for _, m := range sent {
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range r.wait(t, len(sent)) {
		if m.Offset != 0 || m.Epoch != "" {
			t.Fatalf("positioned: %+v", m)
		}
	}
}

func concurrentOrder(t *testing.T, b hub.Broker) {
	var r recorder
	b.Start(r.deliver)
	Subscribe(t, b, "news")
	ctx := context.Background()
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := b.Publish(ctx, hub.Message{Channel: "news", Event: "e", Data: json.RawMessage(fmt.Sprint(w*1000 + i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The hub's recovery merges held-back deliveries by offset: a channel's deliveries
	// must come in offset order, whoever published them.
	for i, m := range r.wait(t, writers*each) {
		if m.Offset != uint64(i+1) {
			t.Fatalf("delivery %d has offset %d", i, m.Offset)
		}
	}
}
