package protocol

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/tokens"
)

var (
	bob   = tokens.User{ID: "2", Name: "Bob"}
	carol = tokens.User{ID: "3", Name: "Carol"}
)

// signin signs c in as userData's user, as an app backend would have signed it.
func (f *fixture) signin(c *fakeConn, userData string) map[string]any {
	auth := channels.UserAuth(f.cfg.AppKey, f.cfg.AppSecret, c.ID(), userData)
	return f.send(c, EventSignin, map[string]string{"auth": auth, "user_data": userData})
}

// waitFrames waits until c was sent a frame containing each of parts, in order.
func waitFrames(t *testing.T, c *fakeConn, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		frames := append([]string(nil), c.frames...)
		c.mu.Unlock()
		i := 0
		for _, fr := range frames {
			if i < len(parts) && strings.Contains(fr, parts[i]) {
				i++
			}
		}
		if i == len(parts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames %q: want %q in order", frames, parts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onlineOnConnect is the environment in which every connection makes its user online.
func onlineOnConnect() map[string]string { return map[string]string{"ONLINE_ON_CONNECT": "true"} }

// By default a connection does not make its user online (it would cost every connection
// a presence entry): only a sign-in does.
func TestConnectionIsNotOnlineByDefault(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "2.1", bob)
	ctx := context.Background()
	if m, _ := f.hub.Members(ctx, hub.OnlineChannel("2")); len(m) != 0 {
		t.Fatalf("online members of 2 without ONLINE_ON_CONNECT: %v", m)
	}
	if ack := f.signin(c, `{"id":"2"}`); ack["ok"] != true {
		t.Fatalf("signin: %v", ack)
	}
	if m, _ := f.hub.Members(ctx, hub.OnlineChannel("2")); len(m) != 1 {
		t.Fatalf("online members of 2 after its sign-in: %v", m)
	}
}

// With ONLINE_ON_CONNECT every socket.io connection makes its user online, and leaving
// makes it offline.
func TestConnectionMakesItsUserOnline(t *testing.T) {
	f := newFixture(t, onlineOnConnect(), Options{})
	c := f.connect(t, "2.1", bob)
	ctx := context.Background()
	if m, _ := f.hub.Members(ctx, hub.OnlineChannel("2")); len(m) != 1 || m[0].UserID != "2" {
		t.Fatalf("online members of 2: %v", m)
	}
	f.svc.Disconnect(c, "client gone")
	if m, _ := f.hub.Members(ctx, hub.OnlineChannel("2")); len(m) != 0 {
		t.Fatalf("online members of 2 after the disconnect: %v", m)
	}
}

// A sign-in's watchlist gets the watched users' state after the ack, then each change.
func TestSigninWatchlist(t *testing.T) {
	f := newFixture(t, onlineOnConnect(), Options{})
	f.connect(t, "2.1", bob)
	w := f.connect(t, "1.1", alice)
	ack := f.signin(w, `{"id":"1","watchlist":["2","3"]}`)
	if ack["ok"] != true {
		t.Fatalf("signin ack %v", ack)
	}
	got := w.emitted(EventWatchlist)
	want := []map[string]any{{"events": []any{
		map[string]any{"name": "online", "user_ids": []any{"2"}},
		map[string]any{"name": "offline", "user_ids": []any{"3"}},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("watchlist events after the signin: %v, want %v", got, want)
	}
	c3 := f.connect(t, "3.1", carol)
	waitFrames(t, w, `"jetsocket:watchlist_events",{"events":[{"name":"online","user_ids":["3"]}]}`)
	f.svc.Disconnect(c3, "client gone")
	waitFrames(t, w,
		`"jetsocket:watchlist_events",{"events":[{"name":"online","user_ids":["3"]}]}`,
		`"jetsocket:watchlist_events",{"events":[{"name":"offline","user_ids":["3"]}]}`)
}

// A second connection of an online user changes nothing for watchers; its last one
// leaving is the user going offline.
func TestWatchlistFollowsTheUserNotItsConnections(t *testing.T) {
	f := newFixture(t, onlineOnConnect(), Options{})
	w := f.connect(t, "1.1", alice)
	if ack := f.signin(w, `{"id":"1","watchlist":["2"]}`); ack["ok"] != true {
		t.Fatalf("signin ack %v", ack)
	}
	a := f.connect(t, "2.1", bob)
	b := f.connect(t, "2.2", bob)
	f.svc.Disconnect(a, "client gone")
	f.svc.Disconnect(b, "client gone")
	waitFrames(t, w, `{"name":"online","user_ids":["2"]}`, `{"name":"offline","user_ids":["2"]}`)
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, fr := range w.frames {
		if strings.Contains(fr, "watchlist_events") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("watchlist frames %q: want one online, one offline", w.frames)
	}
}

// Without a watchlist a sign-in gets no watchlist event.
func TestSigninWithoutWatchlist(t *testing.T) {
	f := newFixture(t, onlineOnConnect(), Options{})
	w := f.connect(t, "1.1", alice)
	if ack := f.signin(w, `{"id":"1"}`); ack["ok"] != true {
		t.Fatalf("signin ack %v", ack)
	}
	if got := w.emitted(EventWatchlist); len(got) != 0 {
		t.Fatalf("watchlist events: %v", got)
	}
}
