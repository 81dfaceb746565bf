package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/hub/hubtest"
)

func openGroup(t *testing.T, urls []string, app string, o Options) *Group {
	t.Helper()
	o.App = app
	g, err := OpenGroup(context.Background(), o, urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// Two independent Redis servers against the hub's contracts: one node, many nodes, history.
func TestTwoRedisServersMeetTheContracts(t *testing.T) {
	urls := []string{startRedis(t), startRedis(t)}
	runContracts(t, func(t *testing.T, app string, o Options) *Group { return openGroup(t, urls, app, o) })
}

// runContracts runs the hub's contract suites (one node, many nodes, history) over the
// layout open opens, each case with an app of its own.
func runContracts(t *testing.T, open func(t *testing.T, app string, o Options) *Group) {
	apps := 0
	t.Run("Node", func(t *testing.T) {
		hubtest.Run(t, func(t *testing.T) hubtest.Backend {
			apps++
			g := open(t, fmt.Sprint("suite-", apps), Options{})
			return hubtest.Backend{Broker: g.Broker(), Presence: g.Presence(), Counts: g.Counts()}
		})
	})
	t.Run("Cluster", func(t *testing.T) {
		hubtest.RunCluster(t, func(t *testing.T) []hubtest.Backend {
			apps++
			var out []hubtest.Backend
			for range 3 {
				g := open(t, fmt.Sprint("cluster-", apps), Options{})
				out = append(out, hubtest.Backend{Broker: g.Broker(), Presence: g.Presence(), Counts: g.Counts()})
			}
			return out
		})
	})
	t.Run("History", func(t *testing.T) {
		hubtest.RunHistory(t, func(t *testing.T, p history.Policy) hub.Broker {
			apps++
			return open(t, fmt.Sprint("hist-", apps), Options{History: p}).Broker()
		})
	})
}

// where reports, for each channel, which servers hold something of it: a key named
// after it, or a field of the counts hash.
func where(t *testing.T, rdbs []*redis.Client, app string, channels []string) map[string][]int {
	t.Helper()
	ctx := context.Background()
	out := make(map[string][]int)
	for i, r := range rdbs {
		keys, err := r.Keys(ctx, "jetsocket:"+app+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		subs, err := r.HGetAll(ctx, "jetsocket:"+app+":subscriptions").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range channels {
			held := subs[ch] != ""
			for _, k := range keys {
				held = held || strings.HasSuffix(k, ":"+ch) || strings.Contains(k, ":"+ch+":")
			}
			if held {
				out[ch] = append(out[ch], i)
			}
		}
	}
	return out
}

// subscribeAll subscribes one connection to each channel through h.
func subscribeAll(t *testing.T, h *hub.Hub, channels []string) {
	t.Helper()
	for i, ch := range channels {
		c := &conn{id: fmt.Sprint("1.", i), user: fmt.Sprint("u", i)}
		m := &hub.Member{UserID: c.user, Info: json.RawMessage(`{}`)}
		if _, err := h.Subscribe(context.Background(), c, ch, m, 0); err != nil {
			t.Fatalf("subscribe to %s: %v", ch, err)
		}
	}
}

// Channels spread over both servers, and each channel's presence, count and history
// sit on one; the listing of channels merges both.
func TestChannelsSpreadOverServers(t *testing.T) {
	urls := []string{startRedis(t), startRedis(t)}
	rdbs := []*redis.Client{client(t, urls[0]), client(t, urls[1])}
	g := openGroup(t, urls, "spread", Options{History: history.Policy{Default: history.Limits{Size: 10, TTL: time.Minute}}})
	var w webhooks
	h := hub.New(g.Broker(), g.Presence(), g.Counts(), w.hooks(), slog.New(slog.DiscardHandler))
	g.SetLocal(h)
	var channels []string
	for i := range 40 {
		channels = append(channels, fmt.Sprintf("presence-spread-%03d", i))
	}
	subscribeAll(t, h, channels)
	ctx := context.Background()
	for _, ch := range channels {
		if err := h.Publish(ctx, hub.Message{Channel: ch, Event: "e", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	per := [2]int{}
	for ch, on := range where(t, rdbs, "spread", channels) {
		if len(on) != 1 || on[0] != shardOf(g.addrs, ch) {
			t.Fatalf("%s is on servers %v, want only %d", ch, on, shardOf(g.addrs, ch))
		}
		per[on[0]]++
	}
	if per[0] == 0 || per[1] == 0 || per[0]+per[1] != len(channels) {
		t.Fatalf("channels per server: %v of %d", per, len(channels))
	}
	all, err := g.Counts().All(ctx, "presence-spread-")
	if err != nil || len(all) != len(channels) {
		t.Fatalf("listing: %d channels (%v), want %d", len(all), err, len(channels))
	}
}

// A resync writes on each server only the entries of the channels it holds: after
// both servers lost their data, each node writes its entries again where they belong.
func TestResyncRewritesEveryServer(t *testing.T) {
	urls := []string{startRedis(t), startRedis(t)}
	rdbs := []*redis.Client{client(t, urls[0]), client(t, urls[1])}
	g := openGroup(t, urls, "resync", Options{Heartbeat: time.Hour, DeadAfter: time.Hour, Resync: time.Hour})
	var w webhooks
	h := hub.New(g.Broker(), g.Presence(), g.Counts(), w.hooks(), slog.New(slog.DiscardHandler))
	g.SetLocal(h)
	var channels []string
	for i := range 20 {
		channels = append(channels, fmt.Sprintf("presence-resync-%03d", i))
	}
	subscribeAll(t, h, channels)
	ctx := context.Background()
	for _, r := range rdbs {
		if err := r.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range g.nodes {
		before := node{Node: n}.syncs()
		n.tick <- struct{}{}
		waitFor(t, "the server's resync", func() bool { return node{Node: n}.syncs() > before })
	}
	for ch, on := range where(t, rdbs, "resync", channels) {
		if len(on) != 1 || on[0] != shardOf(g.addrs, ch) {
			t.Fatalf("%s is on servers %v after the resync, want only %d", ch, on, shardOf(g.addrs, ch))
		}
	}
	for _, ch := range channels {
		m, err := g.Presence().Members(ctx, ch)
		if err != nil || len(m) != 1 {
			t.Fatalf("%s members after the resync: %v %v", ch, m, err)
		}
	}
}

// Rendezvous hashing ranks servers by address, not by their place in the list.
func TestShardOfIgnoresListOrder(t *testing.T) {
	a := []string{"h1:6379/0", "h2:6379/0", "h3:6379/0"}
	b := []string{"h3:6379/0", "h1:6379/0", "h2:6379/0"}
	for i := range 200 {
		ch := fmt.Sprint("private-", i)
		if a[shardOf(a, ch)] != b[shardOf(b, ch)] {
			t.Fatalf("%s: %s in one order, %s in another", ch, a[shardOf(a, ch)], b[shardOf(b, ch)])
		}
	}
}
