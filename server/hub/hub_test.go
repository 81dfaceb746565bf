package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/wire"
)

// fakeConn records frames; full makes SendFrame refuse, as a slow consumer's queue does.
type fakeConn struct {
	id, user string
	mu       sync.Mutex
	frames   []string
	full     bool
	closed   bool

	chans ConnChannels
}

func (c *fakeConn) HubChannels() *ConnChannels { return &c.chans }

func (c *fakeConn) ID() string     { return c.id }
func (c *fakeConn) UserID() string { return c.user }
func (c *fakeConn) SendFrame(f wire.Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return false
	}
	c.frames = append(c.frames, string(f.Text()))
	return true
}
func (c *fakeConn) Close(string) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
func (c *fakeConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

func newHub(hooks Hooks) *Hub {
	return New(NewMemoryBroker(), NewMemoryPresence(), nil, hooks, slog.New(slog.DiscardHandler))
}

func member(id string) *Member {
	return &Member{UserID: id, Info: json.RawMessage(`{"name":"` + id + `"}`)}
}

func TestPublishReachesSubscribersExceptSender(t *testing.T) {
	h := newHub(Hooks{})
	ctx := context.Background()
	a, b, c := &fakeConn{id: "1.1", user: "a"}, &fakeConn{id: "1.2", user: "b"}, &fakeConn{id: "1.3", user: "c"}
	for _, x := range []*fakeConn{a, b} {
		if _, err := h.Subscribe(ctx, x, "news", nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	h.Subscribe(ctx, c, "other", nil, 0)
	if err := h.Publish(ctx, Message{Channel: "news", Event: "client-hi", Data: json.RawMessage(`{"x":1}`), UserID: "a", ExceptSocketID: "1.1"}); err != nil {
		t.Fatal(err)
	}
	if got := a.got(); len(got) != 0 {
		t.Fatalf("sender got %q", got)
	}
	if got := b.got(); len(got) != 1 || got[0] != `2["client-hi",{"channel":"news","data":{"x":1},"user_id":"a"}]` {
		t.Fatalf("subscriber got %q", got)
	}
	if got := c.got(); len(got) != 0 {
		t.Fatalf("other channel got %q", got)
	}
	h.Publish(ctx, Message{Channel: "news", Event: "e"})
	if got := b.got(); got[1] != `2["e",{"channel":"news","data":null}]` {
		t.Fatalf("no data: %q", got[1])
	}
}

func TestPresenceCountsUsersOnce(t *testing.T) {
	var events []string
	h := newHub(Hooks{
		ChannelOccupied: func(ch string) { events = append(events, "occupied "+ch) },
		ChannelVacated:  func(ch string) { events = append(events, "vacated "+ch) },
		MemberAdded:     func(ch, u string) { events = append(events, "added "+u) },
		MemberRemoved:   func(ch, u string) { events = append(events, "removed "+u) },
	})
	ctx := context.Background()
	ch := "presence-room"
	a1, a2, b := &fakeConn{id: "1.1", user: "a"}, &fakeConn{id: "1.2", user: "a"}, &fakeConn{id: "2.1", user: "b"}

	if ms, err := h.Subscribe(ctx, b, ch, member("b"), 10); err != nil || len(ms) != 1 {
		t.Fatalf("b: %v %v", ms, err)
	}
	ms, _ := h.Subscribe(ctx, a1, ch, member("a"), 10)
	if len(ms) != 2 || ms[0].UserID != "a" || ms[1].UserID != "b" {
		t.Fatalf("members sorted: %+v", ms)
	}
	ms, _ = h.Subscribe(ctx, a2, ch, member("a"), 10)
	if len(ms) != 2 {
		t.Fatalf("second connection counted: %+v", ms)
	}
	if got := b.got(); len(got) != 1 || !strings.Contains(got[0], `"jetsocket:member_added",{"channel":"presence-room","user_id":"a","user_info":{"name":"a"}}`) {
		t.Fatalf("b saw %q, want one member_added", got)
	}
	if got := a1.got(); len(got) != 0 {
		t.Fatalf("a1 saw %q (its own user's second connection must not announce)", got)
	}
	// Re-subscribing is harmless.
	h.Subscribe(ctx, a1, ch, member("a"), 10)
	h.Unsubscribe(ctx, a1, ch)
	if got := b.got(); len(got) != 1 {
		t.Fatalf("member_removed while a still has a connection: %q", got)
	}
	h.Unsubscribe(ctx, a2, ch)
	if got := b.got(); len(got) != 2 || !strings.Contains(got[1], `"jetsocket:member_removed",{"channel":"presence-room","user_id":"a"}`) {
		t.Fatalf("b saw %q, want member_removed", got)
	}
	h.Unsubscribe(ctx, b, ch)
	h.Unsubscribe(ctx, b, ch) // harmless
	want := "occupied presence-room,added b,added a,removed a,removed b,vacated presence-room"
	if got := strings.Join(events, ","); got != want {
		t.Fatalf("hooks: %s\nwant   %s", got, want)
	}
	if n, _ := h.Subscribers(ctx, ch); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

func TestPresenceCap(t *testing.T) {
	h := newHub(Hooks{})
	ctx := context.Background()
	h.Subscribe(ctx, &fakeConn{id: "1", user: "a"}, "presence-x", member("a"), 2)
	h.Subscribe(ctx, &fakeConn{id: "2", user: "b"}, "presence-x", member("b"), 2)
	third := &fakeConn{id: "3", user: "c"}
	if _, err := h.Subscribe(ctx, third, "presence-x", member("c"), 2); err != ErrFull {
		t.Fatalf("third user: %v, want ErrFull", err)
	}
	if _, err := h.Subscribe(ctx, &fakeConn{id: "4", user: "a"}, "presence-x", member("a"), 2); err != nil {
		t.Fatalf("existing member's second connection: %v", err)
	}
	if h.Subscribed(third, "presence-x") {
		t.Fatal("refused connection subscribed anyway")
	}
}

// A subscriber whose queue is full does not stop delivery to the others.
func TestFullSubscriberDoesNotBlockOthers(t *testing.T) {
	h := newHub(Hooks{})
	ctx := context.Background()
	stuck := &fakeConn{id: "0", user: "s", full: true}
	h.Subscribe(ctx, stuck, "c", nil, 0)
	var others []*fakeConn
	for i := range 50 {
		o := &fakeConn{id: fmt.Sprint("1.", i), user: "u"}
		others = append(others, o)
		h.Subscribe(ctx, o, "c", nil, 0)
	}
	for range 100 {
		h.Publish(ctx, Message{Channel: "c", Event: "e", Data: json.RawMessage(`1`)})
	}
	for _, o := range others {
		if n := len(o.got()); n != 100 {
			t.Fatalf("%s got %d of 100", o.id, n)
		}
	}
}

func TestChannelsOf(t *testing.T) {
	h := newHub(Hooks{})
	ctx := context.Background()
	c := &fakeConn{id: "9", user: "u"}
	for _, ch := range []string{"b", "a", "presence-c"} {
		var m *Member
		if strings.HasPrefix(ch, "presence-") {
			m = member("u")
		}
		h.Subscribe(ctx, c, ch, m, 0)
	}
	if got := strings.Join(h.ChannelsOf(c), ","); got != "a,b,presence-c" {
		t.Fatalf("got %s", got)
	}
	if h.Subscriptions(c) != 3 {
		t.Fatal("count")
	}
}

func BenchmarkFanOut1000(b *testing.B) { benchFanOut(b, nil) }

// BenchmarkFanOut1000WithAlt is the fan-out to socket.io subscribers as the server
// runs it, with the Pusher endpoint's alternate encoding set: the frames carry a lazy
// Alt that no subscriber here builds.
func BenchmarkFanOut1000WithAlt(b *testing.B) {
	benchFanOut(b, func(Message) []byte { panic("built for a socket.io subscriber") })
}

func benchFanOut(b *testing.B, alt func(Message) []byte) {
	h := newHub(Hooks{})
	if alt != nil {
		h.SetAltEncoding(alt)
	}
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

type discardConn struct {
	id    string
	chans ConnChannels
}

func (d *discardConn) ID() string                 { return d.id }
func (d *discardConn) UserID() string             { return "u" }
func (d *discardConn) SendFrame(wire.Frame) bool  { return true }
func (d *discardConn) Close(string)               {}
func (d *discardConn) HubChannels() *ConnChannels { return &d.chans }

func TestUserChannelAndTerminate(t *testing.T) {
	var hooked []string
	h := newHub(Hooks{ChannelOccupied: func(ch string) { hooked = append(hooked, ch) }})
	ctx := context.Background()
	a1, a2, b := &fakeConn{id: "1", user: "a"}, &fakeConn{id: "2", user: "a"}, &fakeConn{id: "3", user: "b"}
	a3 := &flushingConn{fakeConn: fakeConn{id: "4", user: "a"}}
	for _, c := range []*fakeConn{a1, a2, b} {
		h.Subscribe(ctx, c, UserChannel(c.user), nil, 0)
	}
	h.Subscribe(ctx, b, "news", nil, 0)
	if len(hooked) != 1 || hooked[0] != "news" {
		t.Fatalf("hooks saw internal channels: %v", hooked)
	}
	if chans, _ := h.Channels(ctx, ""); len(chans) != 1 || chans["news"] != 1 {
		t.Fatalf("listing: %v", chans)
	}
	if h.Subscriptions(b) != 1 {
		t.Fatal("internal channel counted against the subscription limit")
	}
	h.Publish(ctx, Message{Channel: UserChannel("a"), Event: "note", Data: json.RawMessage(`"hi"`)})
	if len(a1.got()) != 1 || len(a2.got()) != 1 || len(b.got()) != 0 {
		t.Fatalf("user delivery: %d %d %d", len(a1.got()), len(a2.got()), len(b.got()))
	}
	h.Subscribe(ctx, a3, UserChannel("a"), nil, 0)
	h.Publish(ctx, Message{Channel: UserChannel("a"), Terminate: true})
	if !a1.closed || !a2.closed || b.closed {
		t.Fatal("terminate closed the wrong connections")
	}
	// Each is told why first; one that can flush is closed after the flush, so that
	// the notice is not dropped with its queue.
	for _, c := range []*fakeConn{a1, a2, &a3.fakeConn} {
		got := c.got()
		if n := len(got); n == 0 || !strings.HasPrefix(got[n-1], `2["`+EventTerminated+`",{"code":"terminated","reason":`) {
			t.Fatalf("%s's last frames: %q", c.id, got)
		}
	}
	if a3.closed || a3.flushClosed != ReasonTerminated {
		t.Fatalf("a flushing connection: closed %v, flush-closed %q", a3.closed, a3.flushClosed)
	}
	if len(b.got()) != 0 {
		t.Fatalf("b got %q", b.got())
	}
}

// flushingConn is a fakeConn that can close after a flush, as socket.Conn can.
type flushingConn struct {
	fakeConn
	flushClosed string
}

func (c *flushingConn) CloseAfterFlush(reason string) { c.flushClosed = reason }

// With counts shared by several hubs (nodes), a channel is occupied by the first
// subscription on any node and vacated by the last, and listings are the totals.
func TestSharedCountsDecideOccupiedAndVacated(t *testing.T) {
	counts := NewMemoryCounts() // one store for both hubs, as Redis is for every node
	var events []string
	hooks := func(node string) Hooks {
		return Hooks{
			ChannelOccupied: func(ch string) { events = append(events, node+" occupied "+ch) },
			ChannelVacated:  func(ch string) { events = append(events, node+" vacated "+ch) },
		}
	}
	log := slog.New(slog.DiscardHandler)
	h1 := New(NewMemoryBroker(), NewMemoryPresence(), counts, hooks("1"), log)
	h2 := New(NewMemoryBroker(), NewMemoryPresence(), counts, hooks("2"), log)
	ctx := context.Background()
	a, b := &fakeConn{id: "1.1", user: "a"}, &fakeConn{id: "2.1", user: "b"}
	h1.Subscribe(ctx, a, "news", nil, 0)
	h2.Subscribe(ctx, b, "news", nil, 0)
	h2.Subscribe(ctx, b, UserChannel("b"), nil, 0) // internal: never counted
	if n, _ := h1.Subscribers(ctx, "news"); n != 2 {
		t.Fatalf("subscribers seen from node 1: %d", n)
	}
	if all, _ := h2.Channels(ctx, ""); len(all) != 1 || all["news"] != 2 {
		t.Fatalf("listing from node 2: %v", all)
	}
	h1.Unsubscribe(ctx, a, "news")
	h2.Unsubscribe(ctx, b, "news")
	want := "1 occupied news,2 vacated news"
	if got := strings.Join(events, ","); got != want {
		t.Fatalf("hooks %s, want %s", got, want)
	}
}

// A presence subscribe and unsubscribe on the memory backends: the per-connection path
// (not the fan-out's).
func BenchmarkSubscribeUnsubscribePresence(b *testing.B) {
	h := newHub(Hooks{})
	ctx := context.Background()
	for i := range 100 {
		h.Subscribe(ctx, &discardConn{id: fmt.Sprint("o", i)}, "presence-c", member(fmt.Sprint("o", i)), 0)
	}
	c := &discardConn{id: "me"}
	m := member("me")
	b.ReportAllocs()
	for b.Loop() {
		h.Subscribe(ctx, c, "presence-c", m, 0)
		h.Unsubscribe(ctx, c, "presence-c")
	}
}

// Resync hands the backend this node's subscriptions (internal channels aside, presence
// members whole) and announces the changes it reports as live changes are announced.
func TestResync(t *testing.T) {
	var events []string
	h := newHub(Hooks{
		ChannelOccupied: func(ch string) { events = append(events, "occupied "+ch) },
		ChannelVacated:  func(ch string) { events = append(events, "vacated "+ch) },
		MemberAdded:     func(ch, u string) { events = append(events, "added "+ch+" "+u) },
		MemberRemoved:   func(ch, u string) { events = append(events, "removed "+ch+" "+u) },
	})
	ctx := context.Background()
	a, b := &fakeConn{id: "1.1", user: "a"}, &fakeConn{id: "1.2", user: "b"}
	h.Subscribe(ctx, a, "presence-x", member("a"), 0)
	h.Subscribe(ctx, b, "presence-x", member("b"), 0)
	h.Subscribe(ctx, a, "news", nil, 0)
	h.Subscribe(ctx, a, UserChannel("a"), nil, 0)
	h.Subscribe(ctx, b, "gone", nil, 0)
	h.Unsubscribe(ctx, b, "gone")
	events = nil
	seenA, seenB := len(a.got()), len(b.got())

	if err := h.Resync(ctx, func(context.Context, State) (Changes, error) { return Changes{}, fmt.Errorf("redis down") }); err == nil {
		t.Fatal("a failed write reported no error")
	}
	var got State
	err := h.Resync(ctx, func(_ context.Context, st State) (Changes, error) {
		got = st
		return Changes{
			Occupied: []string{"news"},
			Left:     []Entry{{Channel: "presence-x", SocketID: "2.1", Member: Member{UserID: "z"}}},
			Joined:   []Entry{{Channel: "presence-x", SocketID: "1.2", Member: *member("b")}},
			Vacated:  []string{"old"},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Counts) != 2 || got.Counts["presence-x"] != 2 || got.Counts["news"] != 1 {
		t.Fatalf("counts handed over: %v", got.Counts)
	}
	slices.SortFunc(got.Presence, func(x, y Entry) int { return strings.Compare(x.SocketID, y.SocketID) })
	if len(got.Presence) != 2 ||
		got.Presence[0].SocketID != "1.1" || got.Presence[0].Member.UserID != "a" || string(got.Presence[0].Member.Info) != `{"name":"a"}` ||
		got.Presence[1].SocketID != "1.2" || got.Presence[1].Member.UserID != "b" {
		t.Fatalf("presence handed over: %+v", got.Presence)
	}
	if want := "occupied news,removed presence-x z,added presence-x b,vacated old"; strings.Join(events, ",") != want {
		t.Fatalf("announced %v, want %s", events, want)
	}
	for _, c := range []*fakeConn{a, b} {
		seen := map[*fakeConn]int{a: seenA, b: seenB}[c]
		frames := c.got()[seen:]
		if len(frames) != 2 || !strings.Contains(frames[0], `"jetsocket:member_removed",{"channel":"presence-x","user_id":"z"}`) ||
			!strings.Contains(frames[1], `"jetsocket:member_added",{"channel":"presence-x","user_id":"b","user_info":{"name":"b"}}`) {
			t.Fatalf("%s got %q", c.id, frames)
		}
	}
}

// channelBroker is a MemoryBroker that records what the hub tells a ChannelBroker.
type channelBroker struct {
	*MemoryBroker
	mu    sync.Mutex
	calls []string
}

func (b *channelBroker) Subscribe(_ context.Context, channel string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "+"+channel)
	return nil
}

func (b *channelBroker) Unsubscribe(channel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "-"+channel)
}

// The hub tells a ChannelBroker of each subscription as it begins (before Subscribe
// returns) and ends; a repeated subscribe, a refused one and an unsubscribe from a
// channel the connection is not on tell it nothing.
func TestTheHubTellsAChannelBrokerItsSubscriptions(t *testing.T) {
	b := &channelBroker{MemoryBroker: NewMemoryBroker()}
	h := New(b, NewMemoryPresence(), nil, Hooks{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	c1, c2, c3 := &fakeConn{id: "1.1", user: "a"}, &fakeConn{id: "1.2", user: "b"}, &fakeConn{id: "1.3", user: "c"}
	for _, s := range []struct {
		c  *fakeConn
		ch string
	}{{c1, "news"}, {c2, "news"}, {c1, "news"}, {c1, UserChannel("a")}} {
		if _, err := h.Subscribe(ctx, s.c, s.ch, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Subscribe(ctx, c1, "presence-x", member("a"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(ctx, c3, "presence-x", member("c"), 1); !errors.Is(err, ErrFull) {
		t.Fatalf("over the cap: %v", err)
	}
	h.Unsubscribe(ctx, c1, "news")
	h.Unsubscribe(ctx, c1, "news")
	h.Unsubscribe(ctx, c3, "presence-x")
	h.Unsubscribe(ctx, c2, "news")
	want := []string{"+news", "+news", "+#server-to-user-a", "+presence-x", "-news", "-news"}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Equal(b.calls, want) {
		t.Fatalf("told %v, want %v", b.calls, want)
	}
}

// The online channels are internal presence: their members are shared state a Resync
// rewrites, but no webhook or count ever names them.
func TestOnlineChannelIsInternalPresence(t *testing.T) {
	var hooked []string
	h := newHub(Hooks{
		MemberAdded:   func(ch, _ string) { hooked = append(hooked, ch) },
		MemberRemoved: func(ch, _ string) { hooked = append(hooked, ch) },
		Counted:       func(ch string, _ int) { hooked = append(hooked, ch) },
	})
	ctx := context.Background()
	c := &fakeConn{id: "1", user: "u"}
	ch := OnlineChannel("u")
	if _, err := h.Subscribe(ctx, c, ch, &Member{UserID: "u", Info: json.RawMessage(`{}`)}, 0); err != nil {
		t.Fatal(err)
	}
	if u, ok := OnlineUser(ch); !ok || u != "u" || !Internal(ch) {
		t.Fatalf("OnlineUser(%q) = %q, %v", ch, u, ok)
	}
	st := h.state()
	if len(st.Presence) != 1 || st.Presence[0].Channel != ch || len(st.Counts) != 0 {
		t.Fatalf("state: %+v", st)
	}
	h.Unsubscribe(ctx, c, ch)
	if len(hooked) != 0 {
		t.Fatalf("hooks told of an internal channel: %v", hooked)
	}
	if m, _ := h.Members(ctx, ch); len(m) != 0 {
		t.Fatalf("members left: %v", m)
	}
}

// What a connection is subscribed to is answered from the connection (its
// ConnChannels), not under the hub's lock that every subscribe and delivery shares:
// Subscribed, Subscriptions and ChannelsOf answer while that lock is held elsewhere.
func TestAConnectionsChannelsAreOnTheConnection(t *testing.T) {
	h := newHub(Hooks{})
	ctx := context.Background()
	c, other := &fakeConn{id: "1", user: "u"}, &fakeConn{id: "2", user: "u"}
	h.Subscribe(ctx, c, "news", nil, 0)
	h.Subscribe(ctx, c, "presence-x", member("u"), 0)
	h.Subscribe(ctx, other, "news", nil, 0)
	if c.HubChannels() != c.HubChannels() || c.chans.subs.len() != 2 {
		t.Fatalf("the connection's channels: %v", c.chans.subs)
	}
	h.mu.Lock() // as a subscribe of another connection would, for as long as it likes
	answered := make(chan string, 1)
	go func() {
		answered <- fmt.Sprint(h.Subscribed(c, "news"), h.Subscribed(c, "other"), h.Subscriptions(c), h.ChannelsOf(c))
	}()
	select {
	case got := <-answered:
		if got != "true false 2 [news presence-x]" {
			t.Errorf("answers %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("a connection's channels waited for the hub's lock")
	}
	h.mu.Unlock()
	h.Unsubscribe(ctx, c, "news")
	h.Unsubscribe(ctx, c, "presence-x")
	if c.chans.subs.few != nil || c.chans.subs.many != nil {
		t.Fatalf("an empty set kept its storage: %v", c.chans.subs)
	}
	if !h.Subscribed(other, "news") || h.Subscribed(c, "news") {
		t.Fatal("the other connection's subscription went with it, or this one stayed")
	}
	// The node's state (what a Resync rewrites) is read from the connections.
	if st := h.state(); st.Counts["news"] != 1 || len(st.Presence) != 0 {
		t.Fatalf("state %+v", st)
	}
}
