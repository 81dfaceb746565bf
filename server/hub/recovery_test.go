package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
)

func historyHub(size int) *Hub {
	policy := history.Policy{
		Default: history.Limits{Size: size, TTL: time.Minute},
		Rules:   []history.Rule{{Pattern: "nohist-*"}},
	}
	return New(NewMemoryBrokerWithHistory(history.NewMemory(), policy), NewMemoryPresence(), nil, Hooks{}, slog.New(slog.DiscardHandler))
}

// delivered is one event a fakeConn got, decoded.
type delivered struct {
	Event   string
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
}

func decodeFrames(t *testing.T, frames []string) []delivered {
	t.Helper()
	out := make([]delivered, 0, len(frames))
	for _, f := range frames {
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(f[1:]), &args); err != nil || len(args) != 2 {
			t.Fatalf("frame %q: %v", f, err)
		}
		var d delivered
		json.Unmarshal(args[0], &d.Event)
		if err := json.Unmarshal(args[1], &d); err != nil {
			t.Fatalf("frame %q: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

func publishN(t *testing.T, h *Hub, channel string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := h.Publish(context.Background(), Message{Channel: channel, Event: "e", Data: json.RawMessage(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPublicationsCarryTheirPosition(t *testing.T) {
	h := historyHub(10)
	ctx := context.Background()
	a := &fakeConn{id: "1.1", user: "a"}
	for _, ch := range []string{"news", "nohist-x", "presence-p", UserChannel("a")} {
		var m *Member
		if ch == "presence-p" {
			m = member("a")
		}
		if _, err := h.Subscribe(ctx, a, ch, m, 0); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, h, "news", 1, 2)
	h.Publish(ctx, Message{Channel: "news", Event: "client-x", Data: json.RawMessage(`{}`), UserID: "b"})
	h.Publish(ctx, Message{Channel: "nohist-x", Event: "e"})
	h.Publish(ctx, Message{Channel: UserChannel("a"), Event: "e"})
	h.Publish(ctx, Message{Channel: "presence-p", Event: EventMemberAdded, Payload: json.RawMessage(`{"channel":"presence-p","user_id":"b"}`)})
	got := decodeFrames(t, a.got())
	if len(got) != 6 {
		t.Fatalf("%d frames: %q", len(got), a.got())
	}
	epoch := got[0].Epoch
	for i, want := range []uint64{1, 2, 3} {
		if got[i].Offset != want || got[i].Epoch != epoch || epoch == "" {
			t.Fatalf("publication %d: %+v", i, got[i])
		}
	}
	if got[2].UserID != "b" || got[2].Event != "client-x" {
		t.Fatalf("a client event keeps its user_id: %+v", got[2])
	}
	for _, d := range got[3:] {
		if d.Offset != 0 || d.Epoch != "" {
			t.Fatalf("no position without history (channel off, internal, member event): %+v", d)
		}
	}
	if want := `2["e",{"channel":"news","data":1,"offset":1,"epoch":"` + epoch + `"}]`; a.got()[0] != want {
		t.Fatalf("wire format %s, want %s", a.got()[0], want)
	}
}

func TestSubscribeSinceRecovers(t *testing.T) {
	h := historyHub(10)
	ctx := context.Background()
	publishN(t, h, "news", 1, 5)
	res, _ := h.History(ctx, "news", history.Query{Limit: -1})
	c := &fakeConn{id: "1.1", user: "a"}
	_, rec, err := h.SubscribeSince(ctx, c, "news", nil, 0, &history.Position{Epoch: res.Position.Epoch, Offset: 2})
	if err != nil || !rec.History || !rec.Asked || !rec.Recovered || rec.Replayed != 3 || rec.Position.Offset != 5 {
		t.Fatalf("%+v %v", rec, err)
	}
	// Live publications before Finish (the ack not sent yet) wait behind the replay.
	publishN(t, h, "news", 6, 6)
	if got := c.got(); len(got) != 0 {
		t.Fatalf("sent before the ack: %q", got)
	}
	rec.Finish()
	publishN(t, h, "news", 7, 7)
	var offs []uint64
	for _, d := range decodeFrames(t, c.got()) {
		offs = append(offs, d.Offset)
		if d.Epoch != res.Position.Epoch || string(d.Data) != strconv.FormatUint(d.Offset, 10) {
			t.Fatalf("%+v", d)
		}
	}
	if fmt.Sprint(offs) != "[3 4 5 6 7]" {
		t.Fatalf("offsets %v", offs)
	}
}

func TestSubscribeSinceNotRecovered(t *testing.T) {
	for _, tc := range []struct {
		name  string
		since func(epoch string) history.Position
		size  int
	}{
		{"another_epoch", func(string) history.Position { return history.Position{Epoch: "gone", Offset: 2} }, 10},
		{"trimmed", func(e string) history.Position { return history.Position{Epoch: e, Offset: 1} }, 3},
		{"future", func(e string) history.Position { return history.Position{Epoch: e, Offset: 50} }, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := historyHub(tc.size)
			ctx := context.Background()
			publishN(t, h, "news", 1, 5)
			res, _ := h.History(ctx, "news", history.Query{Limit: -1})
			c := &fakeConn{id: "1.1", user: "a"}
			_, rec, err := h.SubscribeSince(ctx, c, "news", nil, 0, &history.Position{Epoch: res.Position.Epoch, Offset: 0})
			_ = rec
			h.Unsubscribe(ctx, c, "news")
			_, rec, err = h.SubscribeSince(ctx, c, "news", nil, 0, ptr(tc.since(res.Position.Epoch)))
			if err != nil || !rec.History || !rec.Asked || rec.Recovered || rec.Replayed != 0 || rec.Position != res.Position {
				t.Fatalf("%+v %v", rec, err)
			}
			publishN(t, h, "news", 6, 6)
			c.mu.Lock()
			c.frames = nil
			c.mu.Unlock()
			rec.Finish()
			got := decodeFrames(t, c.got())
			if len(got) != 1 || got[0].Offset != 6 {
				t.Fatalf("only what came after the ack's position: %+v", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSubscribeWithoutSinceGivesThePosition(t *testing.T) {
	h := historyHub(10)
	ctx := context.Background()
	c := &fakeConn{id: "1.1", user: "a"}
	_, rec, err := h.SubscribeSince(ctx, c, "news", nil, 0, nil)
	if err != nil || !rec.History || rec.Asked || rec.Position.Offset != 0 || rec.Position.Epoch == "" {
		t.Fatalf("%+v %v", rec, err)
	}
	rec.Finish() // nothing to do, harmless
	publishN(t, h, "news", 1, 1)
	if got := decodeFrames(t, c.got()); len(got) != 1 || got[0].Epoch != rec.Position.Epoch {
		t.Fatalf("the first publication continues the epoch the subscriber was given: %+v %+v", got, rec.Position)
	}
	_, rec, _ = h.SubscribeSince(ctx, &fakeConn{id: "1.2"}, "nohist-x", nil, 0, &history.Position{Epoch: "x", Offset: 1})
	if rec.History || !rec.Asked || rec.Recovered {
		t.Fatalf("a channel without history: %+v", rec)
	}
}

// Publications racing a replay: whatever the interleaving, the subscriber gets every
// publication after its position once, in order.
func TestPublicationsRacingAReplay(t *testing.T) {
	h := historyHub(1000)
	ctx := context.Background()
	publishN(t, h, "news", 1, 50)
	res, _ := h.History(ctx, "news", history.Query{Limit: -1})
	const total = 600
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 51; i <= total; i++ {
			h.Publish(ctx, Message{Channel: "news", Event: "e", Data: json.RawMessage(strconv.Itoa(i))})
		}
	})
	var conns []*fakeConn
	var sinces []uint64
	for i := range 20 {
		c := &fakeConn{id: fmt.Sprintf("1.%d", i)}
		// Some way back, well within MaxReplay.
		now, _ := h.History(ctx, "news", history.Query{Limit: -1})
		since := now.Position.Offset - uint64(20+i)
		_, rec, err := h.SubscribeSince(ctx, c, "news", nil, 0, &history.Position{Epoch: res.Position.Epoch, Offset: since})
		if err != nil || !rec.Recovered {
			t.Fatalf("%+v %v", rec, err)
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond) // some live ones held back
		rec.Finish()
		conns, sinces = append(conns, c), append(sinces, since)
	}
	wg.Wait()
	for i, c := range conns {
		got := decodeFrames(t, c.got())
		want := sinces[i] + 1
		for _, d := range got {
			if d.Offset != want || string(d.Data) != strconv.FormatUint(want, 10) {
				var all []uint64
				for _, x := range got {
					all = append(all, x.Offset)
				}
				t.Fatalf("subscriber %d (since %d): got offset %d, want %d: %v", i, sinces[i], d.Offset, want, all)
			}
			want++
		}
		if want != total+1 {
			t.Fatalf("subscriber %d (since %d): ended at %d of %d", i, sinces[i], want-1, total)
		}
	}
}

// A connection held back on one channel still gets the others at once, and its held
// back frames are bounded.
func TestReplayHoldsBackOnlyItsChannel(t *testing.T) {
	h := historyHub(10)
	ctx := context.Background()
	c := &fakeConn{id: "1.1"}
	h.Subscribe(ctx, c, "other", nil, 0)
	_, rec, _ := h.SubscribeSince(ctx, c, "news", nil, 0, &history.Position{Epoch: "x"})
	publishN(t, h, "other", 1, 1)
	if len(c.got()) != 1 {
		t.Fatalf("%q", c.got())
	}
	for i := 0; i <= maxHeldBack; i++ {
		h.Publish(ctx, Message{Channel: "news", Event: "e"})
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		t.Fatal("a recovery holding back more than maxHeldBack was not closed")
	}
	rec.Finish()
}

// More missed publications than MaxReplay: not recovered, nothing replayed.
func TestReplayIsBounded(t *testing.T) {
	h := historyHub(1000)
	ctx := context.Background()
	publishN(t, h, "news", 1, MaxReplay+1)
	res, _ := h.History(ctx, "news", history.Query{Limit: -1})
	for _, tc := range []struct {
		since uint64
		ok    bool
	}{{0, false}, {1, true}} {
		c := &fakeConn{id: "1.1"}
		_, rec, err := h.SubscribeSince(ctx, c, "news", nil, 0, &history.Position{Epoch: res.Position.Epoch, Offset: tc.since})
		if err != nil || rec.Recovered != tc.ok {
			t.Fatalf("since %d: %+v %v", tc.since, rec, err)
		}
		rec.Finish()
		if want := map[bool]int{true: MaxReplay, false: 0}[tc.ok]; len(c.got()) != want {
			t.Fatalf("since %d: %d frames, want %d", tc.since, len(c.got()), want)
		}
		h.Unsubscribe(ctx, c, "news")
	}
}
