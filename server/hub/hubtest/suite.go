// Package hubtest is the contract of the hub's backends (Broker, Presence, Counts) as
// one test suite, run against every implementation (the memory ones in hub, the Redis
// one in cluster) so that they cannot drift apart.
package hubtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	t.Run("BrokerKeepsOrderHere", func(t *testing.T) { orderHere(t, f(t)) })
	t.Run("PresenceManyUsers", func(t *testing.T) { presenceMany(t, f(t)) })
	t.Run("PresenceLeaveNeedsTheSocketsUser", func(t *testing.T) { presenceWrongUser(t, f(t)) })
	t.Run("CountsConcurrentNeverNegative", func(t *testing.T) { countsConcurrent(t, f(t)) })
}

// orderHere: a channel's messages reach the publishing node in the order published.
func orderHere(t *testing.T, b Backend) {
	var mu sync.Mutex
	var got []string
	b.Broker.Start(func(m hub.Message) {
		mu.Lock()
		got = append(got, string(m.Data))
		mu.Unlock()
	})
	var want []string
	for i := range 100 {
		want = append(want, strconv.Itoa(i))
		if err := b.Broker.Publish(context.Background(), hub.Message{Channel: "news", Event: "e", Data: json.RawMessage(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v", got)
	}
}

// presenceMany: many users, listed once each and sorted; once all left, the channel
// is empty and a user joining again is first again.
func presenceMany(t *testing.T, b Backend) {
	ctx := context.Background()
	p := b.Presence
	var want []string
	for i := range 50 {
		u := fmt.Sprintf("u%02d", 49-i)
		want = append(want, fmt.Sprintf("u%02d", i))
		for _, sock := range []string{"1." + u, "2." + u} {
			if _, err := p.Join(ctx, "presence-big", sock, hub.Member{UserID: u, Info: json.RawMessage(`{}`)}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ms, err := p.Members(ctx, "presence-big"); err != nil || !slices.Equal(ids(ms), want) {
		t.Fatalf("members: %v %v", ids(ms), err)
	}
	for _, u := range want {
		for i, sock := range []string{"1." + u, "2." + u} {
			if last, err := p.Leave(ctx, "presence-big", sock, u); err != nil || last != (i == 1) {
				t.Fatalf("leave %s: %v %v", sock, last, err)
			}
		}
	}
	if ms, err := p.Members(ctx, "presence-big"); err != nil || len(ms) != 0 {
		t.Fatalf("after every leave: %v %v", ids(ms), err)
	}
	if first, err := p.Join(ctx, "presence-big", "3.1", hub.Member{UserID: "u00"}, 0); err != nil || !first {
		t.Fatalf("joining again: %v %v", first, err)
	}
}

// presenceWrongUser: a leave names the socket's user; another user's name removes
// nothing.
func presenceWrongUser(t *testing.T, b Backend) {
	ctx := context.Background()
	p := b.Presence
	if _, err := p.Join(ctx, "presence-x", "1.1", hub.Member{UserID: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	if last, err := p.Leave(ctx, "presence-x", "1.1", "b"); err != nil || last {
		t.Fatalf("leave as another user: %v %v", last, err)
	}
	if ms, _ := p.Members(ctx, "presence-x"); !slices.Equal(ids(ms), []string{"a"}) {
		t.Fatalf("members: %v", ids(ms))
	}
}

// countsConcurrent: concurrent changes all count, and a total never goes below zero.
func countsConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	c := b.Counts
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 10 {
				if _, err := c.Add(ctx, "busy", 1); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := c.Get(ctx, "busy"); err != nil || n != 100 {
		t.Fatalf("after 100 adds: %d %v", n, err)
	}
	if n, err := c.Add(ctx, "busy", -150); err != nil || n != 0 {
		t.Fatalf("below zero: %d %v", n, err)
	}
	if n, err := c.Get(ctx, "busy"); err != nil || n != 0 {
		t.Fatalf("get after going below zero: %d %v", n, err)
	}
	if all, err := c.All(ctx, "busy"); err != nil || len(all) != 0 {
		t.Fatalf("listed at zero: %v %v", all, err)
	}
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
