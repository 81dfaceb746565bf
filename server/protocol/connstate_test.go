package protocol

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/tokens"
)

// connectFresh is a connection of u, connected, without the fixture's cleanup.
func (f *fixture) connectFresh(t *testing.T, id string, u tokens.User) *fakeConn {
	t.Helper()
	tm, _ := tokens.NewManager(tokens.Config{Secret: f.cfg.JWTSecret, TTL: time.Hour})
	claims, err := tm.Verify(f.token(t, u))
	if err != nil {
		t.Fatal(err)
	}
	c := newFakeConn(id, claims)
	f.svc.Connect(c)
	return c
}

// After Disconnect, nothing of a connection is made again: every event is refused
// connection_closed (503), no channel is joined, no limit is counted, and a second
// Connect or Disconnect changes nothing. (With the state in a registry by socket id, a
// late subscribe made the entry again and joined the channel for good.)
func TestNothingIsRecreatedAfterDisconnect(t *testing.T) {
	f := newFixture(t, nil, Options{})
	other := f.connect(t, "9.9", alice) // the same user: the counts must stay at one
	c := f.connectFresh(t, "1.1", alice)
	if ack := f.send(c, EventSubscribe, map[string]string{"channel": "private-group-staff"}); ack["ok"] != true {
		t.Fatalf("subscribe: %v", ack)
	}
	if n := f.svc.userConns.Count("1"); n != 2 {
		t.Fatalf("user count %d, want 2", n)
	}
	f.svc.Disconnect(c, "client gone")

	for _, ev := range []struct {
		name    string
		payload any
	}{
		{EventSubscribe, map[string]string{"channel": "news"}},
		{EventSubscribe, map[string]string{"channel": "private-group-staff"}},
		{"client-typing", map[string]any{"channel": "private-group-staff", "data": map[string]int{"n": 1}}},
		{EventUnsubscribe, map[string]string{"channel": "private-group-staff"}},
		{EventRefresh, map[string]string{"token": f.token(t, alice)}},
		{EventSignin, map[string]string{"auth": "key:x", "user_data": `{"id":"1"}`}},
		{EventPing, nil},
	} {
		wantRefusal(t, f.send(c, ev.name, ev.payload), 503, CodeConnectionClosed)
	}
	if chans := f.hub.ChannelsOf(c); len(chans) != 0 {
		t.Fatalf("channels after the disconnect: %v", chans)
	}
	f.svc.Connect(c) // a second connect of a connection gone
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed != ReasonConnectionClosed {
		t.Fatalf("a Connect after Disconnect was not refused (closed %q)", closed)
	}
	f.svc.Disconnect(c, "client gone") // and a second disconnect
	if chans := f.hub.ChannelsOf(c); len(chans) != 0 {
		t.Fatalf("channels after connecting again: %v", chans)
	}
	if n := f.svc.userConns.Count("1"); n != 1 {
		t.Fatalf("user count %d, want 1 (the other connection's)", n)
	}
	if n := f.svc.ipConns.Count(c.IP()); n != 1 {
		t.Fatalf("address count %d, want 1", n)
	}
	// The other connection of the user is untouched.
	if ack := f.send(other, EventPing, nil); ack["pong"] != true {
		t.Fatalf("the other connection: %v", ack)
	}
}

// An event of a connection that has not connected is refused too: the state is made by
// Connect only.
func TestEventBeforeConnectIsRefused(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := newFakeConn("1.1", nil)
	wantRefusal(t, f.send(c, EventPing, nil), 503, CodeConnectionClosed)
}

// Subscribes, unsubscribes and client events racing Disconnect (run with -race): each
// is taken whole before the connection's channels are left, or refused; none joins a
// channel after, and the limits are released once.
func TestEventsRacingDisconnect(t *testing.T) {
	f := newFixture(t, map[string]string{"SUBSCRIBE_RATE": "10000", "CLIENT_EVENT_RATE": "10000"}, Options{})
	const rounds, workers, perWorker = 20, 6, 40
	for round := range rounds {
		c := f.connectFresh(t, fmt.Sprintf("1.%d", round), alice)
		if ack := f.send(c, EventSubscribe, map[string]string{"channel": "private-group-staff"}); ack["ok"] != true {
			t.Fatalf("subscribe: %v", ack)
		}
		var started, done sync.WaitGroup
		gone := make(chan struct{})
		acks := make(chan map[string]any, workers*(perWorker+1))
		started.Add(workers)
		for w := range workers {
			done.Go(func() {
				for i := range perWorker {
					var ack map[string]any
					ch := fmt.Sprintf("news-%d-%d", w, i%3)
					switch i % 3 {
					case 0:
						ack = f.send(c, EventSubscribe, map[string]string{"channel": ch})
					case 1:
						ack = f.send(c, "client-typing", map[string]any{"channel": "private-group-staff", "data": i})
					default:
						ack = f.send(c, EventUnsubscribe, map[string]string{"channel": fmt.Sprintf("news-%d-0", w)})
					}
					acks <- ack
					if i == 0 {
						started.Done()
					}
				}
				<-gone
				acks <- f.send(c, EventSubscribe, map[string]string{"channel": fmt.Sprintf("news-%d-late", w)})
			})
		}
		started.Wait()
		f.svc.Disconnect(c, "client gone")
		close(gone)
		done.Wait()
		close(acks)
		refused := 0
		for ack := range acks {
			if ack["ok"] == true {
				continue
			}
			wantRefusal(t, ack, 503, CodeConnectionClosed)
			refused++
		}
		if refused < workers {
			t.Fatalf("round %d: %d refusals, want at least the %d events after the disconnect", round, refused, workers)
		}
		if chans := f.hub.ChannelsOf(c); len(chans) != 0 {
			t.Fatalf("round %d: channels after the disconnect: %v", round, chans)
		}
		if all, _ := f.hub.Channels(context.Background(), ""); len(all) != 0 {
			t.Fatalf("round %d: occupied channels after the disconnect: %v", round, all)
		}
		if n := f.svc.userConns.Count("1"); n != 0 {
			t.Fatalf("round %d: user count %d after the disconnect", round, n)
		}
		if n := f.svc.ipConns.Count(c.IP()); n != 0 {
			t.Fatalf("round %d: address count %d after the disconnect", round, n)
		}
	}
}

// A refresh and a sign-in racing Disconnect leave no expiry timer armed and no user
// channel joined.
func TestRefreshAndSigninRacingDisconnect(t *testing.T) {
	f := newFixture(t, nil, Options{})
	for round := range 20 {
		c := f.connectFresh(t, fmt.Sprintf("1.%d", round), alice)
		tok := f.token(t, alice)
		var wg sync.WaitGroup
		wg.Go(func() { f.send(c, EventRefresh, map[string]string{"token": tok}) })
		wg.Go(func() {
			data := `{"id":"42"}`
			f.send(c, EventSignin, map[string]string{"auth": channels.UserAuth("key", testAppSecret, c.ID(), data), "user_data": data})
		})
		wg.Go(func() { f.svc.Disconnect(c, "client gone") })
		wg.Wait()
		if chans := f.hub.ChannelsOf(c); len(chans) != 0 {
			t.Fatalf("round %d: channels after the disconnect: %v", round, chans)
		}
		if f.hub.Subscribed(c, hub.UserChannel("42")) {
			t.Fatalf("round %d: a sign-in joined after the disconnect", round)
		}
	}
}
