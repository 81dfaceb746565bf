package history

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/cluster"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/redistest"
	"github.com/jetsocket/jetsocket/server/wire"
)

// startRedis runs a throwaway redis-server and returns its URL.
func startRedis(b *testing.B) string { return redistest.Start(b).URL() }

// countingConn counts the frames it gets and signals each on got.
type countingConn struct {
	discardConn
	n   atomic.Int64
	got chan struct{}
}

func (c *countingConn) SendFrame(wire.Frame) bool {
	c.n.Add(1)
	c.got <- struct{}{}
	return true
}

// BenchmarkRedisPublish2000 is one publication, in many-node mode with one node on a
// local redis-server, until this node's 2,000 subscribers have it: with history off
// the node delivers at once and PUBLISHes; with it on, one script appends and
// PUBLISHes, and the node delivers from its Redis subscription.
func BenchmarkRedisPublish2000(b *testing.B) {
	url := startRedis(b)
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", on), func(b *testing.B) {
			o := cluster.Options{URL: url, App: fmt.Sprint("bench-", on), Logger: slog.New(slog.DiscardHandler)}
			if on {
				o.History = policy
			}
			n, err := cluster.Open(context.Background(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			h := hub.New(n, n, n, hub.Hooks{}, slog.New(slog.DiscardHandler))
			n.SetLocal(h)
			ctx := context.Background()
			for i := range 1999 {
				h.Subscribe(ctx, &discardConn{id: fmt.Sprint(i)}, "news", nil, 0)
			}
			// The last subscriber in the hub's (unordered) fan-out is not known; one
			// counting subscriber among 2,000 says the publication arrived.
			last := &countingConn{discardConn: discardConn{id: "last"}, got: make(chan struct{}, 1)}
			h.Subscribe(ctx, last, "news", nil, 0)
			m := hub.Message{Channel: "news", Event: "e", Data: payload}
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
				<-last.got
			}
		})
	}
}

// BenchmarkRedisReplay100 reads 100 publications back from Redis for a subscribe with
// since and sends them (Finish).
func BenchmarkRedisReplay100(b *testing.B) {
	url := startRedis(b)
	n, err := cluster.Open(context.Background(), cluster.Options{URL: url, App: "bench", History: policy, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	h := hub.New(n, n, n, hub.Hooks{}, slog.New(slog.DiscardHandler))
	n.SetLocal(h)
	ctx := context.Background()
	for range 100 {
		h.Publish(ctx, hub.Message{Channel: "news", Event: "e", Data: payload})
	}
	res, _ := h.History(ctx, "news", history.Query{Limit: -1})
	if res.Position.Offset != 100 {
		b.Fatalf("%+v", res.Position)
	}
	since := &history.Position{Epoch: res.Position.Epoch}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := &discardConn{id: fmt.Sprint(i)}
		i++
		_, rec, err := h.SubscribeSince(ctx, c, "news", nil, 0, since)
		if err != nil || !rec.Recovered || rec.Replayed != 100 {
			b.Fatalf("%+v %v", rec, err)
		}
		rec.Finish()
		h.Unsubscribe(ctx, c, "news")
	}
}

// BenchmarkRedisHistoryMemory reports what one channel's full history (100 publications
// of the payload above) takes in Redis: MEMORY USAGE of its stream and its meta hash.
func BenchmarkRedisHistoryMemory(b *testing.B) {
	url := startRedis(b)
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	s := history.NewRedis(rdb, "jetsocket:bench:")
	ctx := context.Background()
	for b.Loop() {
		rdb.FlushAll(ctx)
		for range 100 {
			if _, err := s.Add(ctx, "private-chat-1", history.Publication{Event: "client-message", Data: payload}, policy.Default); err != nil {
				b.Fatal(err)
			}
		}
		total := int64(0)
		for _, k := range []string{"jetsocket:bench:history:private-chat-1", "jetsocket:bench:history-meta:private-chat-1"} {
			n, err := rdb.MemoryUsage(ctx, k).Result()
			if err != nil {
				b.Fatal(err)
			}
			total += n
		}
		b.ReportMetric(float64(total), "bytes/channel")
	}
}
