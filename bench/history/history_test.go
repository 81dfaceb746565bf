// Package history measures what keeping channel history costs (BENCHMARKS.md,
// "History"): the publish path at 2,000 subscribers with history on and off on one
// node, the memory of a channel's history, and the time to replay 100 publications to a
// reconnecting client. The subscribers are in-process connections that do nothing with
// a frame, so the figures are the hub's own cost, without sockets.
//
//	cd bench && go test -run '^$' -bench . -benchmem ./history
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/wire"
)

type discardConn struct {
	id    string
	chans hub.ConnChannels
}

func (d *discardConn) ID() string                     { return d.id }
func (d *discardConn) UserID() string                 { return "u" }
func (d *discardConn) SendFrame(wire.Frame) bool      { return true }
func (d *discardConn) Close(string)                   {}
func (d *discardConn) HubChannels() *hub.ConnChannels { return &d.chans }

// payload is a typical chat-sized event (58 bytes).
var payload = json.RawMessage(`{"text":"hello, world","user":"alice","n":12345,"ok":true}`)

var policy = history.Policy{Default: history.Limits{Size: 100, TTL: 2 * time.Minute}}

func newHub(withHistory bool) *hub.Hub {
	b := hub.NewMemoryBroker()
	if withHistory {
		b = hub.NewMemoryBrokerWithHistory(history.NewMemory(), policy)
	}
	return hub.New(b, hub.NewMemoryPresence(), nil, hub.Hooks{}, slog.New(slog.DiscardHandler))
}

// BenchmarkPublish2000 is one publication to 2,000 subscribers of one channel.
func BenchmarkPublish2000(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", on), func(b *testing.B) {
			h := newHub(on)
			ctx := context.Background()
			for i := range 2000 {
				h.Subscribe(ctx, &discardConn{id: fmt.Sprint(i)}, "news", nil, 0)
			}
			m := hub.Message{Channel: "news", Event: "e", Data: payload}
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishManyChannels spreads publications over 1,000 channels of 2
// subscribers each: the history's per-channel bookkeeping, not the fan-out, dominates.
func BenchmarkPublishManyChannels(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", on), func(b *testing.B) {
			h := newHub(on)
			ctx := context.Background()
			for i := range 2000 {
				h.Subscribe(ctx, &discardConn{id: fmt.Sprint(i)}, fmt.Sprint("ch-", i%1000), nil, 0)
			}
			msgs := make([]hub.Message, 1000)
			for i := range msgs {
				msgs[i] = hub.Message{Channel: fmt.Sprint("ch-", i), Event: "e", Data: payload}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.Publish(ctx, msgs[i%len(msgs)])
				i++
			}
		})
	}
}

// BenchmarkHistoryMemory reports the heap a channel's full history (100 publications of
// the payload above) holds in the memory store.
func BenchmarkHistoryMemory(b *testing.B) {
	const channels = 1000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := history.NewMemory()
		ctx := context.Background()
		for c := range channels {
			ch := fmt.Sprint("private-chat-", c)
			for range 100 {
				// A fresh copy per publication, as a published message's data is.
				s.Add(ctx, ch, history.Publication{Event: "client-message", Data: append(json.RawMessage(nil), payload...)}, policy.Default)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/channels, "bytes/channel")
		runtime.KeepAlive(s)
	}
}

// BenchmarkReplay100 is a subscribe with since 100 publications back: reading them,
// encoding each for the connection and sending them (Finish).
func BenchmarkReplay100(b *testing.B) {
	h := newHub(true)
	ctx := context.Background()
	for range 100 {
		h.Publish(ctx, hub.Message{Channel: "news", Event: "e", Data: payload})
	}
	res, _ := h.History(ctx, "news", history.Query{Limit: -1})
	since := &history.Position{Epoch: res.Position.Epoch, Offset: 0}
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
