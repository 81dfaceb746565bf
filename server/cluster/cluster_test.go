package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/hub/hubtest"
	"github.com/jetsocket/jetsocket/server/redistest"
)

// startRedis runs a throwaway redis-server and returns its URL.
func startRedis(t *testing.T) string { return redistest.Start(t).URL() }

func open(t *testing.T, url, app string, o Options) *Node {
	t.Helper()
	o.URL, o.App = url, app
	n, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// inbox records delivered messages.
type inbox struct {
	mu   sync.Mutex
	msgs []hub.Message
}

func (b *inbox) deliver(m hub.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

func (b *inbox) events() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		out = append(out, m.Event)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMessagesReachEveryNodeOnce(t *testing.T) {
	url := startRedis(t)
	a, b, other := open(t, url, "app", Options{}), open(t, url, "app", Options{}), open(t, url, "other-app", Options{})
	defer a.Close()
	defer b.Close()
	defer other.Close()
	var ia, ib, io inbox
	a.Start(ia.deliver)
	b.Start(ib.deliver)
	other.Start(io.deliver)
	hubtest.Subscribe(t, a, "news")
	hubtest.Subscribe(t, b, "news")
	hubtest.Subscribe(t, other, "news")

	for i := range 3 {
		m := hub.Message{Channel: "news", Event: fmt.Sprint("e", i), Data: json.RawMessage(`{"n":1}`), ExceptSocketID: "1.2"}
		if err := a.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if got := ia.events(); !slices.Equal(got, []string{"e0", "e1", "e2"}) {
		t.Fatalf("the publishing node delivers at once: %v", got)
	}
	eventually(t, "the other node", func() bool { return len(ib.events()) == 3 })
	if got := ib.events(); !slices.Equal(got, []string{"e0", "e1", "e2"}) {
		t.Fatalf("other node got %v, want in order", got)
	}
	ib.mu.Lock()
	m := ib.msgs[0]
	ib.mu.Unlock()
	if m.Channel != "news" || string(m.Data) != `{"n":1}` || m.ExceptSocketID != "1.2" {
		t.Fatalf("message changed on the way: %+v", m)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(ia.events()); n != 3 {
		t.Fatalf("the publisher got its own messages back: %d", n)
	}
	if n := len(io.events()); n != 0 {
		t.Fatalf("another app's node got %d messages", n)
	}
}

// twoNodes opens two nodes of one app on a fresh Redis; they leave with the test.
func twoNodes(t *testing.T) (a, b *Node) {
	url := startRedis(t)
	a, b = open(t, url, "app", Options{}), open(t, url, "app", Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestPresenceIsOneListAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	u := hub.Member{UserID: "u1", Info: json.RawMessage(`{"name":"U1"}`)}

	if first, err := a.Join(ctx, "presence-x", "1.1", u, 10); err != nil || !first {
		t.Fatalf("first join: %v %v", first, err)
	}
	if first, err := b.Join(ctx, "presence-x", "2.1", u, 10); err != nil || first {
		t.Fatalf("same user on another node: first=%v %v", first, err)
	}
	ms, err := b.Members(ctx, "presence-x")
	if err != nil || len(ms) != 1 || ms[0].UserID != "u1" || string(ms[0].Info) != `{"name":"U1"}` {
		t.Fatalf("members %v %v", ms, err)
	}
	if _, err := b.Join(ctx, "presence-x", "2.2", hub.Member{UserID: "u2", Info: json.RawMessage(`{}`)}, 1); !errors.Is(err, hub.ErrFull) {
		t.Fatalf("over the cap: %v", err)
	}
	if last, err := a.Leave(ctx, "presence-x", "1.1", "u1"); err != nil || last {
		t.Fatalf("one of two connections left: last=%v %v", last, err)
	}
	if last, _ := a.Leave(ctx, "presence-x", "1.1", "u1"); last {
		t.Fatal("leaving twice counts")
	}
	if last, err := b.Leave(ctx, "presence-x", "2.1", "u1"); err != nil || !last {
		t.Fatalf("the last connection: last=%v %v", last, err)
	}
	if ms, _ := a.Members(ctx, "presence-x"); len(ms) != 0 {
		t.Fatalf("members left: %v", ms)
	}
}

func TestChannelCountsAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	steps := []struct {
		n     *Node
		delta int
		want  int
	}{{a, 1, 1}, {b, 1, 2}, {b, 1, 3}, {a, -1, 2}, {b, -1, 1}, {b, -1, 0}}
	for i, s := range steps {
		got, err := s.n.Add(ctx, "news", s.delta)
		if err != nil || got != s.want {
			t.Fatalf("step %d: %d %v, want %d", i, got, err, s.want)
		}
		if i == 2 {
			all, _ := a.All(ctx, "ne")
			if c, _ := b.Get(ctx, "news"); c != 3 || all["news"] != 3 || len(all) != 1 {
				t.Fatalf("totals: get %d, all %v", c, all)
			}
			if none, _ := a.All(ctx, "private-"); len(none) != 0 {
				t.Fatalf("prefix filter: %v", none)
			}
		}
	}
	if all, _ := a.All(ctx, ""); len(all) != 0 {
		t.Fatalf("vacated channel still listed: %v", all)
	}
}

// reaper records what a reaping removed.
type reaper struct {
	mu   sync.Mutex
	gone []string
}

func (r *reaper) MemberGone(_ context.Context, channel, userID string) {
	r.mu.Lock()
	r.gone = append(r.gone, "member "+channel+" "+userID)
	r.mu.Unlock()
}

// Resync: this stand-in for a hub has no connections of its own to write.
func (r *reaper) Resync(context.Context, func(context.Context, hub.State) (hub.Changes, error)) error {
	return nil
}

func (r *reaper) ChannelBack(channel string) {
	r.mu.Lock()
	r.gone = append(r.gone, "back "+channel)
	r.mu.Unlock()
}

func (r *reaper) ChannelGone(channel string) {
	r.mu.Lock()
	r.gone = append(r.gone, "channel "+channel)
	r.mu.Unlock()
}

func (r *reaper) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.gone))
}

// A node that stops beating (a crash: nothing cleaned up) is reaped by another: its
// presence connections leave (member_removed where it held a user's last one) and its
// subscriptions are uncounted (channel_vacated where they were the last).
func TestADeadNodeIsReaped(t *testing.T) {
	url := startRedis(t)
	fast := Options{Heartbeat: 50 * time.Millisecond, DeadAfter: 200 * time.Millisecond}
	live := open(t, url, "app", fast)
	defer live.Close()
	var r reaper
	live.SetLocal(&r)
	dead := open(t, url, "app", Options{Heartbeat: time.Hour, DeadAfter: time.Hour})
	ctx := context.Background()

	// Both nodes have a connection of u1 on presence-a; only the dead one has u2's.
	u1, u2 := hub.Member{UserID: "u1", Info: json.RawMessage(`{}`)}, hub.Member{UserID: "u2", Info: json.RawMessage(`{}`)}
	for _, j := range []struct {
		n    *Node
		sock string
		m    hub.Member
	}{{live, "1.1", u1}, {dead, "2.1", u1}, {dead, "2.2", u2}} {
		if _, err := j.n.Join(ctx, "presence-a", j.sock, j.m, 0); err != nil {
			t.Fatal(err)
		}
	}
	live.Add(ctx, "shared", 1)
	dead.Add(ctx, "shared", 1)
	dead.Add(ctx, "only-dead", 1)

	// The crash: its goroutines stop, nothing is cleaned, its last beat is old.
	close(dead.stop)
	dead.done.Wait()
	dead.rdb.HSet(ctx, dead.key+"nodes", dead.id, time.Now().Add(-time.Minute).UnixMilli())

	eventually(t, "the reaping", func() bool { return len(r.seen()) == 2 })
	if got := r.seen(); !slices.Equal(got, []string{"channel only-dead", "member presence-a u2"}) {
		t.Fatalf("reaped %v", got)
	}
	ms, _ := live.Members(ctx, "presence-a")
	if len(ms) != 1 || ms[0].UserID != "u1" {
		t.Fatalf("members after the reaping: %v", ms)
	}
	eventually(t, "the shared count to drop to the live node's 1", func() bool {
		c, _ := live.Get(ctx, "shared")
		return c == 1
	})
	eventually(t, "the dead node to leave the list", func() bool {
		nodes, _ := live.rdb.HKeys(ctx, live.key+"nodes").Result()
		return slices.Equal(nodes, []string{live.id})
	})
	_ = dead.ps.Close()
	_ = dead.rdb.Close()
}

func TestOpenRefusesAnUnreachableRedis(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Open(context.Background(), Options{URL: "redis://" + addr + "/0"}); err == nil {
		t.Fatal("opened a node on a closed port")
	}
	if _, err := Open(context.Background(), Options{URL: "http://x"}); err == nil {
		t.Fatal("opened a node on a bad URL")
	}
}

// The Redis backend against the contract the memory ones meet too (hub's tests).
func TestRedisBackend(t *testing.T) {
	url := startRedis(t)
	apps := 0
	hubtest.Run(t, func(t *testing.T) hubtest.Backend {
		apps++ // a fresh app's keys: an empty store on the same Redis
		n := open(t, url, fmt.Sprint("suite-", apps), Options{})
		t.Cleanup(func() { n.Close() })
		return hubtest.Backend{Broker: n.Broker, Presence: n.Presence, Counts: n.Counts}
	})
}

// Three Redis nodes of one app against the cluster contract.
func TestRedisBackendsAsACluster(t *testing.T) {
	url := startRedis(t)
	apps := 0
	hubtest.RunCluster(t, func(t *testing.T) []hubtest.Backend {
		apps++
		var out []hubtest.Backend
		for range 3 {
			n := open(t, url, fmt.Sprint("cluster-", apps), Options{})
			t.Cleanup(func() { n.Close() })
			out = append(out, hubtest.Backend{Broker: n.Broker, Presence: n.Presence, Counts: n.Counts})
		}
		return out
	})
}
