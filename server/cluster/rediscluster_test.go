package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
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

// newRedisCluster starts three redis-servers and makes them a Redis Cluster of three
// masters (no replicas), with persistence or without.
func newRedisCluster(t *testing.T, persist bool) []*redisProc {
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
		r := newRedisProc(t, persist, true)
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
