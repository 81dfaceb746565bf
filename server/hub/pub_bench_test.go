package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
)

// BenchmarkFanOut1000History is BenchmarkFanOut1000 on a channel that keeps history:
// every publication is positioned, so its frame carries a wire.Pub (one allocation per
// publication, none per subscriber) for the connections that log what they are sent.
func BenchmarkFanOut1000History(b *testing.B) {
	policy := history.Policy{Default: history.Limits{Size: 100, TTL: time.Minute}}
	h := New(NewMemoryBrokerWithHistory(history.NewMemory(), policy), NewMemoryPresence(), nil, Hooks{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for i := range 1000 {
		h.Subscribe(ctx, &discardConn{id: fmt.Sprint(i)}, "c", nil, 0)
	}
	m := Message{Channel: "c", Event: "e", Data: json.RawMessage(`{"text":"hello","n":1}`)}
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(ctx, m)
	}
}
