package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/history/historytest"
)

func TestMemoryStore(t *testing.T) {
	historytest.Run(t, func(t *testing.T) historytest.Backend {
		b := historytest.Backend{Store: history.NewMemory()}
		// A lone node restarted: its memory store is new.
		b.Lose = func(*testing.T) { *b.Store.(*history.Memory) = *history.NewMemory() }
		return b
	})
}

// Channels whose history expired are reclaimed even if nobody touches them again.
func TestMemoryReclaimsExpiredChannels(t *testing.T) {
	now := time.Unix(1000, 0)
	m := history.NewMemoryClock(func() time.Time { return now })
	l := history.Limits{Size: 100, TTL: time.Minute}
	for i := range 1000 {
		m.Add(context.Background(), "ch-"+string(rune('a'+i%26))+"-"+time.Duration(i).String(), history.Publication{Event: "e"}, l)
	}
	if m.Channels() != 1000 {
		t.Fatalf("%d channels", m.Channels())
	}
	now = now.Add(2 * time.Minute)
	// Any use of a shard sweeps it: 1000 other channels touch all 64 shards (the chance
	// that one is missed is about 1e-7).
	for i := range 1000 {
		m.Read(context.Background(), "other-"+time.Duration(i).String(), history.Query{Limit: -1}, l)
	}
	if n := m.Channels(); n != 1000 {
		t.Fatalf("%d channels held, want only the 1000 read since: the expired ones stayed", n)
	}
}
