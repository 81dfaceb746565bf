package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed: cannot create a Redis Cluster")
	}
	dir := t.TempDir()
	var urls, addrs []string
	freePort := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	for i := range 3 {
		// The bus port is given: its default, port+10000, is past 65535 for many of
		// the ports the system hands out.
		port, bus := freePort(), freePort()
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-port", fmt.Sprint(bus),
			"--cluster-config-file", fmt.Sprintf("%s/nodes-%d.conf", dir, i), "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("redis-server did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
		addrs, urls = append(addrs, addr), append(urls, "redis://"+addr+"/0")
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Skipf("redis-cli --cluster create failed: %v: %s", err, out)
	}
	// The masters agree on the slots a moment after the creation.
	deadline := time.Now().Add(20 * time.Second)
	for _, u := range urls {
		c := client(t, u)
		for {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Skipf("the Redis Cluster did not become ready: %s", info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return urls
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
