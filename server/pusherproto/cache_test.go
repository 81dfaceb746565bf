package pusherproto

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

func TestLastEventFromHistory(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := history.Policy{Default: history.Limits{Size: 10, TTL: time.Minute}}
	h := hub.New(hub.NewMemoryBrokerWithHistory(history.NewMemory(), policy), hub.NewMemoryPresence(), nil, hub.Hooks{}, log)
	s := &Service{hub: h, log: log}
	ctx := context.Background()
	if got := s.lastEvent(ctx, "cache-x"); got != nil {
		t.Fatalf("before any publication: %s", got)
	}
	for _, v := range []string{`1`, `2`} {
		if err := h.Publish(ctx, hub.Message{Channel: "cache-x", Event: "e", Data: json.RawMessage(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(s.lastEvent(ctx, "cache-x")); got != `{"event":"e","channel":"cache-x","data":"2"}` {
		t.Fatalf("last event: %s", got)
	}
}
