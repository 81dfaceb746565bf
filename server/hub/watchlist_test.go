package hub

import (
	"context"
	"strings"
	"testing"
	"time"
)

// An online channel's member changes reach its watchers as watchlist events, never its
// members (the user's own connections, on it only to count as online).
func TestOnlineChangesReachWatchersNotMembers(t *testing.T) {
	h := newHub(Hooks{})
	ctx := context.Background()
	own, watcher := &fakeConn{id: "1.1", user: "u"}, &fakeConn{id: "1.2", user: "w"}
	if err := h.GoOnline(ctx, own, "u"); err != nil {
		t.Fatal(err)
	}
	events, err := h.Watch(ctx, watcher, []string{"u", "v"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Name != "online" || events[0].UserIDs[0] != "u" || events[1].Name != "offline" || events[1].UserIDs[0] != "v" {
		t.Fatalf("state: %+v", events)
	}
	// Another node's connection of u leaving, as Redis would bring it while own stays.
	if err := h.Publish(ctx, Message{Channel: OnlineChannel("u"), Event: EventMemberRemoved, Payload: []byte(`{"channel":"#online-u","user_id":"u"}`)}); err != nil {
		t.Fatal(err)
	}
	want := `["jetsocket:watchlist_events",{"events":[{"name":"offline","user_ids":["u"]}]}]`
	deadline := time.Now().Add(5 * time.Second)
	for got := watcher.got(); len(got) == 0 || !strings.Contains(got[0], want); got = watcher.got() {
		if time.Now().After(deadline) {
			t.Fatalf("watcher got %q, want %s", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := own.got(); len(got) != 0 {
		t.Fatalf("the user's own connection got %q", got)
	}
}
