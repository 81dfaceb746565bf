// Package hubtest is the contract of the hub's backends (Broker, Presence, Counts) as
// one test suite, run against every implementation (the memory ones in hub, the Redis
// one in cluster) so that they cannot drift apart.
package hubtest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/jetsocket/jetsocket/server/hub"
)

// Backend is one node's delivery backend.
type Backend struct {
	Broker   hub.Broker
	Presence hub.Presence
	Counts   hub.Counts
}

// Factory returns a new, empty backend for one test; it closes it with t.Cleanup.
type Factory func(t *testing.T) Backend

// Run runs the whole contract against backends made by f.
func Run(t *testing.T, f Factory) {
	t.Run("BrokerDeliversHereAtOnceAndWhole", func(t *testing.T) { brokerDelivers(t, f(t)) })
	t.Run("PresenceCountsAUserOnce", func(t *testing.T) { presenceJoinLeave(t, f(t)) })
	t.Run("PresenceCap", func(t *testing.T) { presenceCap(t, f(t)) })
	t.Run("PresenceJoinReplacesInfo", func(t *testing.T) { presenceInfo(t, f(t)) })
	t.Run("CountsTotalsAndListings", func(t *testing.T) { counts(t, f(t)) })
}

func brokerDelivers(t *testing.T, b Backend) {
	var mu sync.Mutex
	var got []hub.Message
	b.Broker.Start(func(m hub.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	sent := []hub.Message{
		{Channel: "news", Event: "e1", Data: json.RawMessage(`{"n":1}`), UserID: "u1", ExceptSocketID: "1.2"},
		{Channel: "presence-x", Event: hub.EventMemberRemoved, Payload: json.RawMessage(`{"channel":"presence-x","user_id":"u"}`)},
		{Channel: hub.UserChannel("u"), Terminate: true},
	}
	for _, m := range sent {
		if err := b.Broker.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// The publishing node's subscribers get a message before Publish returns.
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(sent) {
		t.Fatalf("delivered %d of %d before Publish returned", len(got), len(sent))
	}
	for i := range sent {
		a, w := got[i], sent[i]
		if a.Channel != w.Channel || a.Event != w.Event || string(a.Data) != string(w.Data) || a.UserID != w.UserID ||
			string(a.Payload) != string(w.Payload) || a.ExceptSocketID != w.ExceptSocketID || a.Terminate != w.Terminate {
			t.Fatalf("message %d changed on the way: %+v, sent %+v", i, a, w)
		}
	}
}

func ids(ms []hub.Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.UserID)
	}
	return out
}

func presenceJoinLeave(t *testing.T, b Backend) {
	ctx := context.Background()
	p := b.Presence
	info := func(name string) json.RawMessage { return json.RawMessage(`{"name":"` + name + `"}`) }
	steps := []struct {
		join            bool
		channel, socket string
		user            string
		want            bool // first for a join, last for a leave
	}{
		{true, "presence-a", "1.1", "u2", true},
		{true, "presence-a", "1.2", "u1", true},
		{true, "presence-a", "1.3", "u1", false}, // the same user's second connection
		{true, "presence-b", "1.3", "u1", true},  // another channel is another list
		{true, "presence-a", "1.3", "u1", false}, // joining again is harmless
		{false, "presence-a", "1.2", "u1", false},
		{false, "presence-a", "1.2", "u1", false}, // leaving twice does not count
		{false, "presence-a", "9.9", "u2", false}, // a connection that never joined
		{false, "presence-a", "1.3", "u1", true},
	}
	for i, s := range steps {
		var got bool
		var err error
		if s.join {
			got, err = p.Join(ctx, s.channel, s.socket, hub.Member{UserID: s.user, Info: info(s.user)}, 0)
		} else {
			got, err = p.Leave(ctx, s.channel, s.socket, s.user)
		}
		if err != nil || got != s.want {
			t.Fatalf("step %d %+v: got %v, %v", i, s, got, err)
		}
		if i == 2 {
			ms, err := p.Members(ctx, "presence-a")
			if err != nil || !slices.Equal(ids(ms), []string{"u1", "u2"}) || string(ms[0].Info) != `{"name":"u1"}` {
				t.Fatalf("members, sorted by id with their info: %+v %v", ms, err)
			}
		}
	}
	if ms, err := p.Members(ctx, "presence-a"); err != nil || !slices.Equal(ids(ms), []string{"u2"}) {
		t.Fatalf("members after the leaves: %+v %v", ms, err)
	}
	if ms, err := p.Members(ctx, "presence-b"); err != nil || !slices.Equal(ids(ms), []string{"u1"}) {
		t.Fatalf("the other channel: %+v %v", ms, err)
	}
	if ms, err := p.Members(ctx, "presence-none"); err != nil || len(ms) != 0 {
		t.Fatalf("an empty channel: %+v %v", ms, err)
	}
}

func presenceCap(t *testing.T, b Backend) {
	ctx := context.Background()
	p := b.Presence
	m := func(id string) hub.Member { return hub.Member{UserID: id, Info: json.RawMessage(`{}`)} }
	for i, id := range []string{"a", "b"} {
		if first, err := p.Join(ctx, "presence-x", string(rune('1'+i))+".1", m(id), 2); err != nil || !first {
			t.Fatalf("%s under the cap: %v %v", id, first, err)
		}
	}
	if _, err := p.Join(ctx, "presence-x", "3.1", m("c"), 2); !errors.Is(err, hub.ErrFull) {
		t.Fatalf("a new user at the cap: %v, want ErrFull", err)
	}
	if first, err := p.Join(ctx, "presence-x", "1.2", m("a"), 2); err != nil || first {
		t.Fatalf("a member's second connection at the cap: %v %v", first, err)
	}
	if ms, _ := p.Members(ctx, "presence-x"); !slices.Equal(ids(ms), []string{"a", "b"}) {
		t.Fatalf("the refused user is listed: %+v", ms)
	}
	if first, err := p.Join(ctx, "presence-x", "3.1", m("c"), 0); err != nil || !first {
		t.Fatalf("no cap: %v %v", first, err)
	}
}

func counts(t *testing.T, b Backend) {
	ctx := context.Background()
	c := b.Counts
	steps := []struct {
		channel     string
		delta, want int
	}{
		{"news", 1, 1}, {"news", 1, 2}, {"news-2", 3, 3}, {"private-x", 1, 1},
		{"news", -1, 1}, {"private-x", -1, 0},
		{"gone", -1, 0}, // below zero stays at zero
	}
	for i, s := range steps {
		if got, err := c.Add(ctx, s.channel, s.delta); err != nil || got != s.want {
			t.Fatalf("step %d %+v: %d %v", i, s, got, err)
		}
	}
	all, err := c.All(ctx, "")
	if err != nil || len(all) != 2 || all["news"] != 1 || all["news-2"] != 3 {
		t.Fatalf("all: %v %v (a channel at 0 is not listed)", all, err)
	}
	if some, err := c.All(ctx, "news-"); err != nil || len(some) != 1 || some["news-2"] != 3 {
		t.Fatalf("by prefix: %v %v", some, err)
	}
	if none, err := c.All(ctx, "presence-"); err != nil || len(none) != 0 {
		t.Fatalf("no match: %v %v", none, err)
	}
	for ch, want := range map[string]int{"news": 1, "news-2": 3, "private-x": 0, "gone": 0, "never": 0} {
		if got, err := c.Get(ctx, ch); err != nil || got != want {
			t.Fatalf("get %s: %d %v, want %d", ch, got, err, want)
		}
	}
	if got, err := c.Add(ctx, "gone", 1); err != nil || got != 1 {
		t.Fatalf("a channel that went below zero counts from zero again: %d %v", got, err)
	}
}

// presenceInfo: a member's info is the latest Join's (a refreshed token may rename
// them), whichever of their connections it came from; the member still counts once.
func presenceInfo(t *testing.T, b Backend) {
	ctx := context.Background()
	p := b.Presence
	m := func(name string) hub.Member {
		return hub.Member{UserID: "a", Info: json.RawMessage(`{"name":"` + name + `"}`)}
	}
	if first, err := p.Join(ctx, "presence-x", "1.1", m("Ann"), 0); err != nil || !first {
		t.Fatalf("join: %v %v", first, err)
	}
	for _, step := range []struct{ socket, name string }{{"1.1", "Anna"}, {"1.2", "Annie"}} {
		if first, err := p.Join(ctx, "presence-x", step.socket, m(step.name), 0); err != nil || first {
			t.Fatalf("join again: %v %v", first, err)
		}
		got, err := p.Members(ctx, "presence-x")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got[0].Info) != `{"name":"`+step.name+`"}` {
			t.Fatalf("members after %s: %+v", step.name, got)
		}
	}
}
