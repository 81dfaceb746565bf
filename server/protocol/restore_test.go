package protocol

import (
	"encoding/json"
	"testing"

	"github.com/jetsocket/jetsocket/server/socket"
)

// restored is what a restore is given for one channel: the stored request and the
// position the client has.
func restored(channel, epoch string, offset uint64, positioned bool) socket.Restored {
	req, _ := json.Marshal(map[string]string{"channel": channel})
	return socket.Restored{Channel: channel, Request: req, Positioned: positioned, Epoch: epoch, Offset: offset}
}

// Restore subscribes a restored session again on every channel from the client's
// position; finish sends each channel's missed publications, in order.
func TestRestoreSubscribesAgainAndReplays(t *testing.T) {
	f := newFixture(t, map[string]string{"CHANNEL_HISTORY": "small-*=3;off-*=0"}, Options{})
	a := f.connect(t, "1.1", alice)
	ack := f.send(a, EventSubscribe, map[string]string{"channel": "news"})
	epoch := ack["position"].(map[string]any)["epoch"].(string)
	ack = f.send(a, EventSubscribe, map[string]string{"channel": "small-x"})
	smallEpoch := ack["position"].(map[string]any)["epoch"].(string)
	for i := range 3 {
		f.svc.triggers.Trigger(t.Context(), []string{"news"}, "e", i, "")
	}

	back := f.connect(t, "1.2", alice)
	finish, ok := f.svc.Restore(back, []socket.Restored{restored("news", epoch, 1, true), restored("small-x", smallEpoch, 0, true)})
	if !ok {
		t.Fatal("not restored")
	}
	if !f.hub.Subscribed(back, "news") || !f.hub.Subscribed(back, "small-x") {
		t.Fatal("not subscribed again")
	}
	if got := eventsOf(t, back); len(got) != 0 {
		t.Fatalf("sent before finish: %v", got)
	}
	finish()
	if o := offsets(eventsOf(t, back)); len(o) != 2 || o[0] != 2 || o[1] != 3 {
		t.Fatalf("replayed %v", o)
	}
	if len(back.emitted(EventSubscriptionSucceeded)) != 0 {
		t.Fatal("a restore answers nobody")
	}

	// A channel whose history no longer covers the client's position, one that keeps
	// none, or a position from another epoch: not restored.
	for i := range 5 {
		f.svc.triggers.Trigger(t.Context(), []string{"small-x"}, "e", i, "")
	}
	for name, chans := range map[string][]socket.Restored{
		"trimmed":    {restored("news", epoch, 3, true), restored("small-x", smallEpoch, 0, true)},
		"no history": {restored("off-y", "", 0, false)},
		"epoch":      {restored("news", "another", 3, true)},
	} {
		c := f.connect(t, "2."+name, alice)
		if _, ok := f.svc.Restore(c, chans); ok {
			t.Fatalf("%s: restored", name)
		}
	}
}

// The channel rules are checked again: a channel the token no longer allows is refused.
func TestRestoreChecksTheRulesAgain(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "3.1", alice)
	ack := f.send(c, EventSubscribe, map[string]string{"channel": "news"})
	epoch := ack["position"].(map[string]any)["epoch"].(string)
	c2 := f.connect(t, "3.2", alice)
	if _, ok := f.svc.Restore(c2, []socket.Restored{restored("private-group-nope", epoch, 0, true)}); ok {
		t.Fatal("a channel the rules refuse was restored")
	}
}
