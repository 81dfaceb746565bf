package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// eventNames decodes the names of the events c got.
func eventNames(t *testing.T, c *conn) []string {
	t.Helper()
	c.mu.Lock()
	frames := append([]string(nil), c.frames...)
	c.mu.Unlock()
	var names []string
	for _, f := range frames {
		var args []json.RawMessage
		var name string
		if err := json.Unmarshal([]byte(f[1:]), &args); err != nil || len(args) == 0 || json.Unmarshal(args[0], &name) != nil {
			t.Fatalf("frame %q", f)
		}
		names = append(names, name)
	}
	return names
}

// In many-node mode too, the history (Redis) keeps the socket a publication excluded:
// the excluded subscriber gets a jetsocket:skip live (from whichever node published),
// and a replay on another node sends it a skip again instead of the publication.
// PublishAt tells the publisher the position.
func TestExcludedSocketIsSkippedLiveAndInReplaysAcrossNodes(t *testing.T) {
	r := newRedis(t, false)
	var w webhooks
	a, b := startNode(t, r.url(), Options{History: historyOn}, &w), startNode(t, r.url(), Options{History: historyOn}, &w)
	ca, cb := &conn{id: "1.1", user: "a"}, &conn{id: "2.1", user: "b"}
	a.sub(t, ca, "private-x")
	b.sub(t, cb, "private-x")
	ctx := context.Background()
	msgs := []hub.Message{
		{Channel: "private-x", Event: "e", Data: json.RawMessage(`1`)},
		{Channel: "private-x", Event: "api-own", Data: json.RawMessage(`2`), ExceptSocketID: "1.1", SkipNotice: true},
		{Channel: "private-x", Event: "client-own", Data: json.RawMessage(`3`), UserID: "a", ExceptSocketID: "1.1"},
	}
	var last history.Position
	for _, m := range msgs {
		pos, err := b.hub.PublishAt(ctx, m)
		if err != nil || pos.Offset != last.Offset+1 || pos.Epoch == "" {
			t.Fatalf("PublishAt: %+v %v after %+v", pos, err, last)
		}
		last = pos
	}
	waitFor(t, "the deliveries", func() bool { return len(eventNames(t, ca)) == 2 && len(eventNames(t, cb)) == 3 })
	if got, _ := positions(t, ca); fmt.Sprint(eventNames(t, ca)) != "[e jetsocket:skip]" || fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("the excluded socket got %v at %v", eventNames(t, ca), got)
	}
	// Its client comes back on node b (same socket id, as a 4.x restore keeps it).
	back := &conn{id: "1.1", user: "a"}
	_, rec, err := b.hub.SubscribeSince(ctx, back, "private-x", nil, 0, &history.Position{Epoch: last.Epoch})
	if err != nil || !rec.Recovered || rec.Replayed != 1 {
		t.Fatalf("%+v %v", rec, err)
	}
	rec.Finish()
	if got, _ := positions(t, back); fmt.Sprint(eventNames(t, back)) != "[e jetsocket:skip jetsocket:skip]" || fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("replayed %v at %v", eventNames(t, back), got)
	}
}
