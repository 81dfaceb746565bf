package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/hub"
)

// quietNodes opens two nodes of one app, started with inboxes; b's unsubscribes take
// delay.
func quietNodes(t *testing.T, delay time.Duration) (a, b *Node, ia, ib *inbox) {
	url := startRedis(t)
	a = open(t, url, "app", Options{})
	b = open(t, url, "app", Options{UnsubscribeDelay: delay})
	t.Cleanup(func() { a.Close(); b.Close() })
	ia, ib = &inbox{}, &inbox{}
	a.Start(ia.deliver)
	b.Start(ib.deliver)
	return a, b, ia, ib
}

// numsub is how many Redis subscribers channel's pub/sub channel has.
func numsub(t *testing.T, n *Node, channel string) int64 {
	t.Helper()
	m, err := n.rdb.PubSubNumSub(context.Background(), n.pubsubChannel(channel)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m[n.pubsubChannel(channel)]
}

func publish(t *testing.T, n *Node, channel, event string) {
	t.Helper()
	if err := n.Publish(context.Background(), hub.Message{Channel: channel, Event: event}); err != nil {
		t.Fatal(err)
	}
}

// A node receives from Redis only the channels it has subscribers on: b's counter
// stays where it was while a's channel gets traffic, and moves with b's own channel.
func TestANodeReceivesOnlyItsChannels(t *testing.T) {
	a, b, ia, ib := quietNodes(t, time.Minute)
	ctx := context.Background()
	if err := a.Subscribe(ctx, "on-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "on-b"); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		publish(t, a, "on-a", "e")
	}
	publish(t, a, "on-b", "marker") // after the others, from the same node
	eventually(t, "the marker", func() bool { return len(ib.events()) == 1 })
	if got := b.Received(); got != 1 {
		t.Fatalf("b received %d messages from Redis, want only the marker", got)
	}
	publish(t, b, "on-a", "from-b")
	eventually(t, "a's message from b", func() bool { return len(ia.events()) == 12 }) // its own 11 at once, then b's
	// Its own ten came back from Redis too (dropped there: delivered at once).
	if got := a.Received(); got != 11 {
		t.Fatalf("a received %d, want every message of its channel, 11", got)
	}
}

// After the last subscriber left and the delay passed, the node unsubscribes in Redis
// and its traffic stops.
func TestUnsubscribeStopsTheTrafficAfterTheDelay(t *testing.T) {
	a, b, _, ib := quietNodes(t, 50*time.Millisecond)
	ctx := context.Background()
	for _, ch := range []string{"x", "keep"} {
		if err := b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, a, "x", "one")
	eventually(t, "x's message", func() bool { return len(ib.events()) == 1 })
	b.Unsubscribe("x")
	eventually(t, "the Redis unsubscribe", func() bool { return !b.subscribed("x") && numsub(t, b, "x") == 0 })
	publish(t, a, "x", "two")
	publish(t, a, "keep", "marker")
	eventually(t, "the marker", func() bool { return len(ib.events()) == 2 })
	if got := ib.events(); got[1] != "marker" || b.Received() != 2 {
		t.Fatalf("after the unsubscribe b got %v, %d from Redis", got, b.Received())
	}
}

// A subscriber back within the delay keeps the Redis subscription: no UNSUBSCRIBE is
// due any more, and the traffic goes on.
func TestAResubscribeWithinTheDelayKeepsTheSubscription(t *testing.T) {
	a, b, _, ib := quietNodes(t, time.Hour)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	b.Unsubscribe("x")
	b.mu.Lock()
	pending := b.subs["x"] != nil && b.subs["x"].timer != nil
	b.mu.Unlock()
	if !pending {
		t.Fatal("no unsubscribe pending after the last subscriber left")
	}
	if err := b.Subscribe(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	s := b.subs["x"]
	kept := s != nil && s.timer == nil && s.refs == 1
	b.mu.Unlock()
	if !kept || numsub(t, b, "x") != 1 {
		t.Fatalf("the subscription was not kept: %+v, %d Redis subscribers", s, numsub(t, b, "x"))
	}
	publish(t, a, "x", "e")
	eventually(t, "the message", func() bool { return len(ib.events()) == 1 })
}

// Subscribes are counted: the Redis subscription ends after the last of several.
func TestTheLastUnsubscribeEndsTheSubscription(t *testing.T) {
	_, b, _, _ := quietNodes(t, time.Millisecond)
	ctx := context.Background()
	for range 2 {
		if err := b.Subscribe(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	b.Unsubscribe("x")
	b.mu.Lock()
	s := b.subs["x"]
	b.mu.Unlock()
	if s == nil || s.timer != nil {
		t.Fatal("one subscriber left, yet the subscription is ending")
	}
	b.Unsubscribe("x")
	eventually(t, "the Redis unsubscribe", func() bool { return !b.subscribed("x") && numsub(t, b, "x") == 0 })
}

// A subscribe returns once Redis confirmed it, so that every message published after
// it reaches the node: with Redis holding every command back for a while (CLIENT
// PAUSE), the SUBSCRIBE is sent at once but confirmed only after the pause, and
// Subscribe waits for that.
func TestASubscribeIsInPlaceWhenItReturns(t *testing.T) {
	a, b, _, ib := quietNodes(t, time.Minute)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "marker"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ch := fmt.Sprint("fresh-", i)
		if err := a.rdb.Do(ctx, "CLIENT", "PAUSE", 200, "ALL").Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		ready := b.subs[ch].ready
		b.mu.Unlock()
		select {
		case <-ready:
		default:
			t.Fatalf("round %d: Subscribe returned before Redis confirmed the subscription", i)
		}
		publish(t, a, ch, "e")
		publish(t, a, "marker", "m")
		eventually(t, "the marker", func() bool { return len(ib.events()) == 2*(i+1) })
		if got := ib.events(); got[2*i] != "e" {
			t.Fatalf("round %d: the message right after the subscribe was missed: %v", i, got[2*i:])
		}
	}
}

// After Redis restarts (empty), a node's channel subscriptions are in place again,
// the ones made while it was away included: messages from another node reach them.
func TestSubscriptionsComeBackAfterARedisRestart(t *testing.T) {
	r := newRedis(t, false)
	var w webhooks
	o := Options{Heartbeat: 100 * time.Millisecond, DeadAfter: time.Hour, Resync: time.Hour}
	a, b := startNode(t, r.url(), o, &w), startNode(t, r.url(), o, &w)
	before, during := &conn{id: "2.1", user: "u1"}, &conn{id: "2.2", user: "u2"}
	b.sub(t, before, "news")
	r.stop()
	// Refused or not confirmed while Redis is away: the subscribe itself succeeds.
	b.sub(t, during, "later")
	r.start()
	ctx := context.Background()
	waitFor(t, "messages from the other node on both channels", func() bool {
		// Published again each round: one sent before the node's pub/sub connection
		// is back is not replayed.
		_ = a.hub.Publish(ctx, hub.Message{Channel: "news", Event: "e", Data: []byte(`1`)})
		_ = a.hub.Publish(ctx, hub.Message{Channel: "later", Event: "e", Data: []byte(`1`)})
		return strings.Contains(before.got(), `"news"`) && strings.Contains(during.got(), `"later"`)
	})
}
