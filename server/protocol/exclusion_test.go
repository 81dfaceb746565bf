package protocol

import (
	"fmt"
	"testing"

	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/tokens"
)

func names(evs []map[string]any) string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprint(e["event"]))
	}
	return fmt.Sprint(out)
}

// A client event's ack carries the position it got: its sender, which is not sent it,
// moves past it without seeing a gap. A trigger whose socket_id excludes a subscriber
// sends that one a jetsocket:skip instead. And a replay on that socket (a re-subscribe
// with since after a gap) never delivers it either of its own publications: it sends a
// skip for each (PRODUCT.md §3, §4).
func TestExcludedPublicationsAreSkippedLiveAndInReplays(t *testing.T) {
	f := newFixture(t, nil, Options{})
	bob := tokens.User{ID: "2", Name: "Bob", Groups: []string{"staff"}}
	a, b := f.connect(t, "1.1", alice), f.connect(t, "1.2", bob)
	ack := f.send(a, EventSubscribe, map[string]string{"channel": "private-group-staff"})
	epoch := ack["position"].(map[string]any)["epoch"].(string)
	f.send(b, EventSubscribe, map[string]string{"channel": "private-group-staff"})

	f.svc.triggers.Trigger(t.Context(), []string{"private-group-staff"}, "e", 1, "")
	ack = f.send(a, "client-typing", map[string]any{"channel": "private-group-staff", "data": 2})
	if ack["ok"] != true || ack["epoch"] != epoch || ack["offset"] != float64(2) {
		t.Fatalf("client event ack %v: it carries the position", ack)
	}
	if err := f.svc.triggers.Trigger(t.Context(), []string{"private-group-staff"}, "api", 3, "1.1"); err != nil {
		t.Fatal(err)
	}
	got := eventsOf(t, a)
	if names(got) != "[e jetsocket:skip]" || got[1]["offset"] != float64(3) || got[1]["epoch"] != epoch ||
		got[1]["channel"] != "private-group-staff" || got[1]["data"] != nil {
		t.Fatalf("the sender got %v", got)
	}
	if names(eventsOf(t, b)) != "[e client-typing api]" {
		t.Fatalf("the other subscriber got %v", eventsOf(t, b))
	}

	live := len(eventsOf(t, a))
	ack = f.send(a, EventSubscribe, map[string]any{"channel": "private-group-staff", "since": map[string]any{"epoch": epoch, "offset": 0}})
	if ack["recovered"] != true {
		t.Fatalf("ack %v", ack)
	}
	got = eventsOf(t, a)[live:]
	if names(got) != "[e jetsocket:skip jetsocket:skip]" || fmt.Sprint(offsets(got)) != "[1 2 3]" {
		t.Fatalf("replayed to the sender %v at %v", names(got), offsets(got))
	}
}

// A socket.io 4.x restore gives the client its socket id back: its replay does not
// deliver the publications that excluded that socket id either.
func TestRestoreSkipsPublicationsExcludedForTheSocket(t *testing.T) {
	f := newFixture(t, nil, Options{})
	a := f.connect(t, "1.1", alice)
	ack := f.send(a, EventSubscribe, map[string]string{"channel": "private-group-staff"})
	epoch := ack["position"].(map[string]any)["epoch"].(string)
	f.send(a, "client-typing", map[string]any{"channel": "private-group-staff", "data": 1})
	f.svc.triggers.Trigger(t.Context(), []string{"private-group-staff"}, "api", 2, "1.1")
	f.svc.triggers.Trigger(t.Context(), []string{"private-group-staff"}, "e", 3, "")
	f.svc.Disconnect(a, "transport close")

	back := f.connect(t, "1.1", alice)
	finish, ok := f.svc.Restore(back, []socket.Restored{restored("private-group-staff", epoch, 0, true)})
	if !ok {
		t.Fatal("not restored")
	}
	finish()
	got := eventsOf(t, back)
	if names(got) != "[jetsocket:skip jetsocket:skip e]" || fmt.Sprint(offsets(got)) != "[1 2 3]" {
		t.Fatalf("restored %v at %v", names(got), offsets(got))
	}
}
