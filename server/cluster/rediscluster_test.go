package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// startRedisCluster runs a throwaway Redis Cluster of three masters and returns their
// URLs. It skips when redis-cli or the cluster's creation is not available (a Redis
// before 7 has no sharded pub/sub).
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	var urls []string
	for _, r := range newRedisCluster(t, false) {
		urls = append(urls, r.url())
	}
	return urls
}

// newRedisCluster starts three redis-servers (with extra arguments) and makes them a
// Redis Cluster of three masters (no replicas), with persistence or without.
func newRedisCluster(t *testing.T, persist bool, extra ...string) []*redisProc {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-cli not installed (scripts/test.sh installs redis-server with it)")
		}
		t.Skip("redis-cli not installed: cannot create a Redis Cluster")
	}
	var procs []*redisProc
	args := []string{"--cluster", "create"}
	for range 3 {
		r := newRedisProc(t, persist, true, extra...)
		procs, args = append(procs, r), append(args, r.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Skipf("redis-cli --cluster create failed: %v: %s", err, out)
	}
	waitClusterOK(t, procs)
	return procs
}

// waitClusterOK waits until every master says the cluster is ok: a moment after its
// creation, or after its masters started again.
func waitClusterOK(t *testing.T, procs []*redisProc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range procs {
		c := client(t, r.url())
		for {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the Redis Cluster did not become ready: %s", info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func openCluster(t *testing.T, seeds []string, app string, o Options) *Group {
	t.Helper()
	o.App = app
	g, err := OpenCluster(context.Background(), o, seeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// Redis Cluster against the hub's contracts: one node, many nodes, history.
func TestRedisClusterMeetsTheContracts(t *testing.T) {
	seeds := startRedisCluster(t)
	runContracts(t, func(t *testing.T, app string, o Options) *Group { return openCluster(t, seeds, app, o) })
}

// On Redis Cluster channels spread over the masters, each channel's keys on one.
func TestRedisClusterSpreadsChannels(t *testing.T) {
	seeds := startRedisCluster(t)
	var rdbs []*redis.Client
	for _, u := range seeds {
		rdbs = append(rdbs, client(t, u))
	}
	g := openCluster(t, seeds, "spread", Options{History: history.Policy{Default: history.Limits{Size: 10, TTL: time.Minute}}})
	var w webhooks
	h := hub.New(g.Broker(), g.Presence(), g.Counts(), w.hooks(), slog.New(slog.DiscardHandler))
	g.SetLocal(h)
	var channels []string
	for i := range 60 {
		channels = append(channels, fmt.Sprintf("presence-spread-%03d", i))
	}
	subscribeAll(t, h, channels)
	ctx := context.Background()
	masters := make(map[int]bool)
	for _, ch := range channels {
		var on []int
		for i, r := range rdbs {
			tag := g.addrs[shardOf(g.addrs, ch)]
			// KEYS answers for this master alone (EXISTS would redirect).
			keys, err := r.Keys(ctx, "jetsocket:spread:{"+tag+"}:members:"+ch).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) == 1 {
				on = append(on, i)
			}
		}
		if len(on) != 1 {
			t.Fatalf("%s's members are on masters %v", ch, on)
		}
		masters[on[0]] = true
	}
	if len(masters) < 2 {
		t.Fatalf("channels on %d master(s) only", len(masters))
	}
	all, err := g.Counts().All(ctx, "presence-spread-")
	if err != nil || len(all) != len(channels) {
		t.Fatalf("listing: %d channels (%v), want %d", len(all), err, len(channels))
	}
}

// Readiness on a Redis Cluster asks each shard's own master: with one master gone, the
// shards on it are not ready, every time, and the others are.
func TestRedisClusterReadinessAsksEachShardsMaster(t *testing.T) {
	procs := newRedisCluster(t, false)
	r := &redisSet{t: t, procs: procs, cluster: true}
	g := openCluster(t, r.urls(), "ready", Options{})
	ctx := context.Background()
	if err := g.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	dead := r.serverOf(t, g, "some-channel")
	on := make([]int, len(g.nodes))
	for i, tag := range g.addrs {
		ch := ""
		for k := 0; ch == ""; k++ { // a channel of this shard, to ask where it lives
			if c := fmt.Sprint("ch-", k); g.addrs[shardOf(g.addrs, c)] == tag {
				ch = c
			}
		}
		on[i] = r.serverOf(t, g, ch)
	}
	procs[dead].stop()
	for i, n := range g.nodes {
		for range 4 {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := n.Ping(cctx)
			cancel()
			if (err != nil) != (on[i] == dead) {
				t.Fatalf("shard %s (on master %d, master %d dead): ping %v", g.addrs[i], on[i], dead, err)
			}
		}
	}
	if err := g.Ping(ctx); err == nil {
		t.Fatal("the group is ready with a master gone")
	}
}

// A master down for longer than the cluster's node timeout, without a replica: the
// other masters mark it failed and the whole cluster refuses every slot (CLUSTERDOWN),
// so every shard of every node is in an outage, not only the dead master's. It comes
// back empty: the nodes write their entries again everywhere, and the changes made
// meanwhile are announced once: a user who left on the dead master's shard, a channel
// first held on a live master's shard while the cluster was down.
func TestRedisClusterDownThenBack(t *testing.T) {
	r := &redisSet{t: t, procs: newRedisCluster(t, false, "--cluster-node-timeout", "1000"), cluster: true}
	var w webhooks
	o := Options{Heartbeat: 100 * time.Millisecond, DeadAfter: time.Hour, Resync: time.Hour}
	a, b := startMember(t, r, o, &w), startMember(t, r, o, &w)
	lost := r.serverOf(t, a.g, "presence-room")
	kept := ""
	for i := 0; kept == ""; i++ {
		if ch := fmt.Sprint("kept-", i); r.serverOf(t, a.g, ch) != lost {
			kept = ch
		}
	}
	watch, a1, b1, b2 := &conn{id: "1.0", user: "watch"}, &conn{id: "1.1", user: "ua"}, &conn{id: "2.1", user: "ub"}, &conn{id: "2.2", user: "uc"}
	a.sub(t, watch, "presence-room")
	a.sub(t, a1, "presence-room")
	b.sub(t, b1, "presence-room")
	waitFor(t, "the nodes to see each other", func() bool { return a.peerCount() == 1 && b.peerCount() == 1 })
	before := w.len()

	r.procs[lost].stop()
	live := client(t, r.procs[(lost+1)%len(r.procs)].url())
	waitFor(t, "the cluster to be down", func() bool {
		info, _ := live.ClusterInfo(context.Background()).Result()
		return strings.Contains(info, "cluster_state:fail")
	})
	ctx := context.Background()
	a.hub.Unsubscribe(ctx, a1, "presence-room") // ua's only connection, on the dead master
	if _, err := b.hub.Subscribe(ctx, b2, kept, nil, 0); err != nil {
		t.Fatal(err) // a subscribe succeeds on the node, counted at the resync
	}
	if got := w.since(before); len(got) != 0 {
		t.Fatalf("webhooks while the cluster was down: %v", got)
	}
	r.procs[lost].start()
	waitClusterOK(t, r.procs)

	waitFor(t, "the presence list and the counts of the connections", func() bool {
		for _, n := range []member{a, b} {
			if memberIDs(t, n.view(), "presence-room") != "ub,watch" || channelList(n.view()) != kept+"=1,presence-room=2" {
				return false
			}
		}
		return true
	})
	want := []string{"channel_occupied " + kept, "member_removed presence-room ua"}
	waitFor(t, "the webhooks of the outage's changes", func() bool { return len(w.since(before)) >= len(want) })
	waitFor(t, "every node to be done", func() bool { return a.settled() && b.settled() })
	for _, n := range []member{a, b} {
		if err := n.resync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.since(before); !slices.Equal(got, want) {
		t.Fatalf("webhooks after the cluster came back:\n%v\nwant\n%v", got, want)
	}
	if got := watch.got(); strings.Count(got, "member_removed") != 1 {
		t.Fatalf("a subscriber on the node saw:\n%s", got)
	}
}
