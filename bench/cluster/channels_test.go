// Package cluster measures what per-channel Redis subscriptions save: how many
// publications each of three nodes receives from Redis, and the CPU the three nodes
// (one process) and redis-server spend, when each node serves a third of 300 channels,
// against every node subscribed to every channel (the traffic of the old single
// app-wide pub/sub channel, where every node received everything).
//
//	cd bench && go test -run TestPerChannelSubscriptions -v ./cluster/
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/cluster"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/redistest"
	"github.com/jetsocket/jetsocket/server/wire"
)

const (
	nodes        = 3
	channels     = 300
	publications = 30000
)

// startRedis runs a throwaway redis-server and returns its URL and process id.
func startRedis(t *testing.T) (string, int) {
	s := redistest.Start(t)
	return s.URL(), s.PID
}

// cpu is a process's user+system CPU time from /proc/<pid>/stat.
func cpu(t *testing.T, pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Skip("no /proc: ", err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)          // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64)          // stime, field 15
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// conn counts what it is sent.
type conn struct {
	id    string
	got   *atomic.Int64
	chans hub.ConnChannels
}

func (c *conn) ID() string                     { return c.id }
func (c *conn) UserID() string                 { return "u" }
func (c *conn) SendFrame(wire.Frame) bool      { c.got.Add(1); return true }
func (c *conn) Close(string)                   {}
func (c *conn) HubChannels() *hub.ConnChannels { return &c.chans }

// publisher is which of nodes publishes publication p: whole rounds over the channels
// in turn (publication p is on channel p%channels, served by node p%channels%nodes).
func publisher(p, nodes int) int { return p / channels % nodes }

// egress is redis-server's total_net_output_bytes (INFO stats).
func egress(t *testing.T, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_net_output_bytes in INFO stats")
	return 0
}

func TestPerChannelSubscriptions(t *testing.T) {
	url, redisPid := startRedis(t)
	opts, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	for _, nodes := range []int{2, 3, 4} {
		for _, everything := range []bool{true, false} {
			measure(t, url, redisPid, rdb, nodes, everything)
		}
	}
}

// measure runs the load on nodes nodes, each serving 1/nodes of the channels.
func measure(t *testing.T, url string, redisPid int, rdb *redis.Client, nodes int, everything bool) {
	{
		name := fmt.Sprintf("%d nodes, %s", nodes, map[bool]string{true: "every node every channel", false: "per-channel"}[everything])
		t.Run(strings.NewReplacer(" ", "-", ",", "").Replace(name), func(t *testing.T) {
			var ns []*cluster.Node
			var hubs []*hub.Hub
			var delivered atomic.Int64
			ctx := context.Background()
			for i := range nodes {
				n, err := cluster.Open(ctx, cluster.Options{URL: url, App: fmt.Sprint("bench-", nodes, everything), Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				defer n.Close()
				h := hub.New(n.Broker, n.Presence, n.Counts, hub.Hooks{}, slog.New(slog.DiscardHandler))
				n.SetLocal(h)
				ns, hubs = append(ns, n), append(hubs, h)
				// This node's third of the channels, one subscriber each.
				for ch := i; ch < channels; ch += nodes {
					if _, err := h.Subscribe(ctx, &conn{id: fmt.Sprint(i, ".", ch), got: &delivered}, fmt.Sprint("ch-", ch), nil, 0); err != nil {
						t.Fatal(err)
					}
				}
				if everything { // what the app-wide channel did: every node gets every message
					for ch := range channels {
						if err := n.Subscribe(ctx, fmt.Sprint("ch-", ch)); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			self := strconv.Itoa(os.Getpid())
			before := make([]uint64, nodes)
			for i, n := range ns {
				before[i] = n.Received()
			}
			cpu0, rcpu0, out0, start := cpu(t, self), cpu(t, strconv.Itoa(redisPid)), egress(t, rdb), time.Now()
			for p := range publications {
				// Every node publishes in turn a round over every channel, so that a
				// publication's node is not tied to the node serving its channel.
				m := hub.Message{Channel: fmt.Sprint("ch-", p%channels), Event: "e", Data: []byte(`{"n":1}`)}
				if err := hubs[publisher(p, nodes)].Publish(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(30 * time.Second); delivered.Load() < publications; {
				if time.Now().After(deadline) {
					t.Fatalf("delivered %d of %d", delivered.Load(), publications)
				}
				time.Sleep(time.Millisecond)
			}
			// Wait for the last messages Redis sends back (echoes are counted too).
			time.Sleep(200 * time.Millisecond)
			elapsed := time.Since(start)
			cpuUsed, rcpuUsed, out := cpu(t, self)-cpu0, cpu(t, strconv.Itoa(redisPid))-rcpu0, egress(t, rdb)-out0
			var total uint64
			for i, n := range ns {
				got := n.Received() - before[i]
				total += got
				t.Logf("%s: node %d received %d messages from Redis, %.0f per 1,000 publications", name, i, got, float64(got)*1000/publications)
			}
			t.Logf("%s: Redis egress %d KB per 1,000 publications", name, out*1000/publications/1024)
			t.Logf("%s: %d received in all; CPU %v for the nodes (one process, %v per 1,000 publications), %v redis-server; %v wall",
				name, total, cpuUsed.Round(time.Millisecond), (cpuUsed * 1000 / publications).Round(time.Microsecond), rcpuUsed.Round(time.Millisecond), elapsed.Round(time.Millisecond))
		})
	}
}
