package protocol

import (
	"encoding/json"
	"testing"

	"github.com/jetsocket/jetsocket/tokens"
)

// eventsOf decodes the channel events c was sent (hub frames), in order.
func eventsOf(t *testing.T, c *fakeConn) []map[string]any {
	t.Helper()
	c.mu.Lock()
	frames := append([]string(nil), c.frames...)
	c.mu.Unlock()
	var out []map[string]any
	for _, f := range frames {
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(f[1:]), &args); err != nil || len(args) < 2 {
			t.Fatalf("frame %q", f)
		}
		var m map[string]any
		json.Unmarshal(args[1], &m)
		var name string
		json.Unmarshal(args[0], &name)
		m["event"] = name
		out = append(out, m)
	}
	return out
}

func offsets(evs []map[string]any) []float64 {
	var out []float64
	for _, e := range evs {
		off, _ := e["offset"].(float64)
		out = append(out, off)
	}
	return out
}

func TestSubscribeSinceRecoversClientEventsAndTriggers(t *testing.T) {
	f := newFixture(t, map[string]string{"CHANNEL_HISTORY": "news-off=0"}, Options{})
	bob := tokens.User{ID: "2", Name: "Bob", Groups: []string{"staff"}}
	a := f.connect(t, "1.1", alice)
	ack := f.send(a, EventSubscribe, map[string]string{"channel": "private-group-staff"})
	pos, _ := ack["position"].(map[string]any)
	if ack["ok"] != true || pos == nil || pos["offset"] != float64(0) || pos["epoch"] == "" {
		t.Fatalf("ack %v: a channel with history gives its position", ack)
	}
	if _, has := ack["recovered"]; has {
		t.Fatalf("ack %v: recovered only answers since", ack)
	}
	epoch := pos["epoch"].(string)
	b := f.connect(t, "1.2", bob)
	f.send(b, EventSubscribe, map[string]string{"channel": "private-group-staff"})
	for i := range 3 {
		if ack := f.send(a, "client-typing", map[string]any{"channel": "private-group-staff", "data": map[string]int{"n": i}}); ack["ok"] != true {
			t.Fatalf("client event: %v", ack)
		}
	}
	got := eventsOf(t, b)
	if len(got) != 3 || got[2]["offset"] != float64(3) || got[2]["epoch"] != epoch || got[2]["user_id"] != "1" {
		t.Fatalf("live client events carry their position: %v", got)
	}

	// Bob comes back on a new connection with the position of the first.
	b2 := f.connect(t, "1.3", bob)
	ack = f.send(b2, EventSubscribe, map[string]any{"channel": "private-group-staff", "since": map[string]any{"epoch": epoch, "offset": 1}})
	if ack["recovered"] != true || ack["position"].(map[string]any)["offset"] != float64(3) {
		t.Fatalf("ack %v", ack)
	}
	got = eventsOf(t, b2)
	if o := offsets(got); len(o) != 2 || o[0] != 2 || o[1] != 3 || got[0]["event"] != "client-typing" || got[0]["user_id"] != "1" {
		t.Fatalf("replayed %v", got)
	}
	if ev := b2.emitted(EventSubscriptionSucceeded); len(ev) != 1 || ev[0]["recovered"] != true {
		t.Fatalf("subscription_succeeded carries the answer too: %v", ev)
	}

	// Another epoch: not recovered, nothing replayed.
	b3 := f.connect(t, "1.4", bob)
	ack = f.send(b3, EventSubscribe, map[string]any{"channel": "private-group-staff", "since": map[string]any{"epoch": "another", "offset": 1}})
	if ack["recovered"] != false || len(eventsOf(t, b3)) != 0 {
		t.Fatalf("ack %v, events %v", ack, eventsOf(t, b3))
	}
}

func TestSubscribeSinceOnAChannelWithoutHistory(t *testing.T) {
	f := newFixture(t, map[string]string{"CHANNEL_HISTORY": "news-off=0"}, Options{})
	a := f.connect(t, "1.1", alice)
	ack := f.send(a, EventSubscribe, map[string]any{"channel": "news-off", "since": map[string]any{"epoch": "x", "offset": 1}})
	if ack["ok"] != true || ack["recovered"] != false {
		t.Fatalf("ack %v", ack)
	}
	if _, has := ack["position"]; has {
		t.Fatalf("ack %v: no position without history", ack)
	}
	f.svc.triggers.Trigger(t.Context(), []string{"news-off"}, "e", 1, "")
	if got := eventsOf(t, a); len(got) != 1 || got[0]["offset"] != nil {
		t.Fatalf("no position on a channel without history: %v", got)
	}
}

func TestSubscribeSinceRefusesABadPosition(t *testing.T) {
	f := newFixture(t, nil, Options{})
	a := f.connect(t, "1.1", alice)
	for _, since := range []any{"1", map[string]any{"epoch": 1, "offset": 1}, map[string]any{"epoch": "e", "offset": -1}, map[string]any{"epoch": "e", "offset": "1"}} {
		ack := f.send(a, EventSubscribe, map[string]any{"channel": "news", "since": since})
		wantRefusal(t, ack, 400, CodeInvalidPayload)
	}
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	wantRefusal(t, f.send(a, EventSubscribe, map[string]any{"channel": "news", "since": map[string]any{"epoch": string(long), "offset": 1}}), 400, CodeInvalidPayload)
}
