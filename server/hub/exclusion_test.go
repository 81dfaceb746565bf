package hub

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/wire"
)

// altConn records each frame's text and its Pusher form (Alt), as the two endpoints
// would see them.
type altConn struct {
	fakeConn
	amu  sync.Mutex
	alts []string
}

func (c *altConn) SendFrame(f wire.Frame) bool {
	c.amu.Lock()
	c.alts = append(c.alts, string(f.Alt()))
	c.amu.Unlock()
	return c.fakeConn.SendFrame(f)
}

// A publication that excluded a socket (a client event's sender, an API trigger's
// socket_id) is not delivered to it by a replay either: the replay sends it an EventSkip
// at that offset instead, so that its position still reaches the channel's.
func TestReplaySkipsPublicationsExcludedForTheSocket(t *testing.T) {
	h := historyHub(10)
	ctx := context.Background()
	a, b := &fakeConn{id: "1.1", user: "a"}, &fakeConn{id: "1.2", user: "b"}
	for _, c := range []*fakeConn{a, b} {
		if _, err := h.Subscribe(ctx, c, "private-c", nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	start, _ := h.History(ctx, "private-c", history.Query{Limit: -1})
	pubs := []Message{
		{Channel: "private-c", Event: "e1", Data: json.RawMessage(`1`)},
		{Channel: "private-c", Event: "client-own", Data: json.RawMessage(`2`), UserID: "a", ExceptSocketID: "1.1"},
		{Channel: "private-c", Event: "api-own", Data: json.RawMessage(`3`), ExceptSocketID: "1.1", SkipNotice: true},
		{Channel: "private-c", Event: "e4", Data: json.RawMessage(`4`), ExceptSocketID: "1.2", SkipNotice: true},
	}
	for _, m := range pubs {
		if err := h.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	live := len(a.got())
	_, rec, err := h.SubscribeSince(ctx, a, "private-c", nil, 0, &start.Position)
	if err != nil || !rec.Recovered {
		t.Fatalf("%+v %v", rec, err)
	}
	if rec.Replayed != 2 {
		t.Fatalf("replayed %d, want the 2 not excluded for 1.1", rec.Replayed)
	}
	rec.Finish()
	got := decodeFrames(t, a.got()[live:])
	want := []struct {
		event  string
		offset uint64
	}{{"e1", 1}, {EventSkip, 2}, {EventSkip, 3}, {"e4", 4}}
	if len(got) != len(want) {
		t.Fatalf("replay: %+v", got)
	}
	for i, w := range want {
		if got[i].Event != w.event || got[i].Offset != w.offset || got[i].Epoch != start.Position.Epoch || got[i].Channel != "private-c" {
			t.Fatalf("replay %d: %+v, want %s at %d", i, got[i], w.event, w.offset)
		}
	}
	for _, d := range got {
		if d.Event == EventSkip && d.Data != nil {
			t.Fatalf("a skip carries no payload: %+v", d)
		}
	}
}

// A trigger with SkipNotice sends the socket it excludes, when subscribed and the
// publication has a position, an EventSkip with that position and no Pusher form (the
// Pusher endpoint must not get it); nothing otherwise.
func TestSkipNoticeGoesToTheExcludedSubscriberOnly(t *testing.T) {
	h := historyHub(10)
	h.SetAltEncoding(func(m Message) []byte { return []byte(`{"event":"` + m.Event + `"}`) })
	ctx := context.Background()
	a, b := &altConn{fakeConn: fakeConn{id: "1.1", user: "a"}}, &altConn{fakeConn: fakeConn{id: "1.2", user: "b"}}
	for _, c := range []*altConn{a, b} {
		for _, ch := range []string{"private-c", "nohist-x"} {
			if _, err := h.Subscribe(ctx, c, ch, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	msgs := []Message{
		{Channel: "private-c", Event: "api-own", Data: json.RawMessage(`1`), ExceptSocketID: "1.1", SkipNotice: true},
		{Channel: "private-c", Event: "client-own", Data: json.RawMessage(`2`), UserID: "a", ExceptSocketID: "1.1"},
		{Channel: "nohist-x", Event: "api-own", Data: json.RawMessage(`3`), ExceptSocketID: "1.1", SkipNotice: true},
		{Channel: "private-c", Event: "api-gone", Data: json.RawMessage(`4`), ExceptSocketID: "9.9", SkipNotice: true},
	}
	for _, m := range msgs {
		if err := h.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := decodeFrames(t, a.got())
	if len(got) != 2 || got[0].Event != EventSkip || got[0].Offset != 1 || got[0].Channel != "private-c" || got[0].Epoch == "" ||
		got[1].Event != "api-gone" || got[1].Offset != 3 {
		t.Fatalf("excluded socket got %+v", got)
	}
	if a.alts[0] != "" {
		t.Fatalf("the skip has a Pusher form: %q", a.alts[0])
	}
	if len(b.got()) != 4 || b.alts[0] == "" {
		t.Fatalf("the other subscriber got %v (alts %q)", b.got(), b.alts)
	}
}

// PublishAt tells the publisher the position its publication got (the client event's
// ack carries it); zero on a channel without history.
func TestPublishAtReturnsThePosition(t *testing.T) {
	h := historyHub(10)
	ctx := context.Background()
	publishN(t, h, "private-c", 1, 2)
	pos, err := h.PublishAt(ctx, Message{Channel: "private-c", Event: "client-x", UserID: "a", ExceptSocketID: "1.1"})
	res, _ := h.History(ctx, "private-c", history.Query{Limit: -1})
	if err != nil || pos.Offset != 3 || pos != res.Position {
		t.Fatalf("%+v %v, history at %+v", pos, err, res.Position)
	}
	if pos, err := h.PublishAt(ctx, Message{Channel: "nohist-x", Event: "e"}); err != nil || pos != (history.Position{}) {
		t.Fatalf("no history: %+v %v", pos, err)
	}
	if pos, err := newHub(Hooks{}).PublishAt(ctx, Message{Channel: "c", Event: "e"}); err != nil || pos != (history.Position{}) {
		t.Fatalf("no history broker: %+v %v", pos, err)
	}
}
