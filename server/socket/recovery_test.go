package socket

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/server/wire"
	"github.com/jetsocket/jetsocket/tokens"
)

func pubFrame(channel, epoch string, offset uint64) wire.Frame {
	ev, _ := wire.EncodeEvent("e", map[string]any{"channel": channel, "offset": offset})
	return wire.NewFrame(ev).WithPub(channel, epoch, offset)
}

func offsetOf(channel, epoch string, offset uint64) string {
	return pubFrame(channel, epoch, offset).Pub().OffsetString()
}

// positions is restore's answer as channel → offset.
func positions(t *testing.T, l *deliveryLog, offset string) (map[string]uint64, bool) {
	t.Helper()
	chans, ok := l.restore(offset)
	if !ok {
		return nil, false
	}
	got := map[string]uint64{}
	for _, c := range chans {
		got[c.Channel] = c.Offset
	}
	return got, true
}

// The client's position on every channel is the last publication of that channel
// written before the one its offset names; channels with none since the subscribe keep
// the subscribe's position.
func TestDeliveryLogRestore(t *testing.T) {
	newLog := func() *deliveryLog {
		l := &deliveryLog{}
		l.track("a", json.RawMessage(`{"channel":"a"}`), true, "EA", 10)
		l.track("b", json.RawMessage(`{"channel":"b"}`), true, "EB", 3)
		l.track("c", json.RawMessage(`{"channel":"c"}`), true, "EC", 7) // nothing written on c
		// a11 b4 a12 b5 b6 a13
		for _, p := range []struct {
			ch, ep string
			off    uint64
		}{{"a", "EA", 11}, {"b", "EB", 4}, {"a", "EA", 12}, {"b", "EB", 5}, {"b", "EB", 6}, {"a", "EA", 13}} {
			l.record(pubFrame(p.ch, p.ep, p.off).Pub())
		}
		return l
	}
	for _, tc := range []struct {
		name   string
		offset string
		want   map[string]uint64
	}{
		{"the last one", offsetOf("a", "EA", 13), map[string]uint64{"a": 13, "b": 6, "c": 7}},
		{"in the middle", offsetOf("b", "EB", 5), map[string]uint64{"a": 12, "b": 5, "c": 7}},
		{"the first", offsetOf("a", "EA", 11), map[string]uint64{"a": 11, "b": 3, "c": 7}},
		{"none since it connected", "", map[string]uint64{"a": 10, "b": 3, "c": 7}},
		{"one from before it connected", offsetOf("a", "EA", 9), map[string]uint64{"a": 10, "b": 3, "c": 7}},
		{"another epoch's", offsetOf("a", "XX", 12), map[string]uint64{"a": 10, "b": 3, "c": 7}},
		{"garbage", "not an offset", map[string]uint64{"a": 10, "b": 3, "c": 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := positions(t, newLog(), tc.offset)
			if !ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, ok, tc.want)
			}
		})
	}

	t.Run("requests and epochs come back; a left channel does not", func(t *testing.T) {
		l := newLog()
		l.untrack("c")
		chans, ok := l.restore(offsetOf("a", "EA", 13))
		want := []Restored{
			{Channel: "a", Request: json.RawMessage(`{"channel":"a"}`), Positioned: true, Epoch: "EA", Offset: 13},
			{Channel: "b", Request: json.RawMessage(`{"channel":"b"}`), Positioned: true, Epoch: "EB", Offset: 6},
		}
		if !ok || !reflect.DeepEqual(chans, want) {
			t.Fatalf("got %+v %v", chans, ok)
		}
	})

	t.Run("a channel without history is restored unpositioned", func(t *testing.T) {
		l := &deliveryLog{}
		l.track("nohist", json.RawMessage(`{}`), false, "", 0)
		chans, ok := l.restore("")
		if !ok || len(chans) != 1 || chans[0].Positioned {
			t.Fatalf("got %+v %v", chans, ok)
		}
	})

	t.Run("an epoch change while logged: not recoverable", func(t *testing.T) {
		l := newLog()
		l.record(pubFrame("b", "NEW", 1).Pub())
		if _, ok := l.restore(offsetOf("a", "EA", 13)); ok {
			t.Fatal("restored across an epoch change")
		}
	})
}

// A full ring forgets its oldest entries: an offset still logged is exact (the evicted
// entries before it count as received), one no longer logged cannot be placed.
func TestDeliveryLogEviction(t *testing.T) {
	l := &deliveryLog{}
	l.track("a", nil, true, "E", 0)
	l.track("b", nil, true, "F", 0)
	l.record(pubFrame("b", "F", 1).Pub())
	for i := uint64(1); i <= recoveryLogSize+10; i++ {
		l.record(pubFrame("a", "E", i).Pub())
	}
	if len(l.ring) != recoveryLogSize {
		t.Fatalf("ring grew to %d", len(l.ring))
	}
	got, ok := positions(t, l, offsetOf("a", "E", 500))
	if !ok || got["a"] != 500 || got["b"] != 1 {
		t.Fatalf("got %v %v", got, ok)
	}
	for _, off := range []string{offsetOf("a", "E", 5), offsetOf("b", "F", 1), ""} {
		if got, ok := positions(t, l, off); ok {
			t.Fatalf("%q: placed at %v though evicted", off, got)
		}
	}
}

// Connections that can be restored write each publication with its offset string as
// the last argument, and log it; others write the shared frame as it is.
func TestSendFrameOffsetArgument(t *testing.T) {
	f := pubFrame("a", "E", 5)
	for _, tc := range []struct {
		log  bool
		want string
	}{{false, `2["e",{"channel":"a","offset":5}]`}, {true, `2["e",{"channel":"a","offset":5},"E:5:a"]`}} {
		c, sess := newTestConn(t)
		if tc.log {
			c.rlog = &deliveryLog{}
		}
		c.SendFrame(f)
		if got := sess.lastText(t); got != tc.want {
			t.Fatalf("log %v: wrote %s", tc.log, got)
		}
		if tc.log && fmt.Sprint(c.rlog.ring) != fmt.Sprint([]uint64{5}) {
			t.Fatalf("logged %v", c.rlog.ring)
		}
	}
}

// BenchmarkSendFrame is one delivery to a connection: without a delivery log (v2, or
// recovery off) and with one (the cost connection state recovery adds per delivery).
func BenchmarkSendFrame(b *testing.B) {
	for _, logged := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", logged), func(b *testing.B) {
			c, _ := newTestConn(b)
			if logged {
				c.rlog = &deliveryLog{}
				c.rlog.track("other", nil, true, "E", 0)
			}
			frames := make([]wire.Frame, 64)
			for i := range frames {
				frames[i] = pubFrame("a", "E", uint64(i+1))
			}
			c.mu.Lock()
			c.writing = true // no writer: the queue is emptied here
			c.mu.Unlock()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.sendFrame(frames[i%len(frames)])
				i++
				if len(c.queue) == 1024 {
					c.queue = c.queue[:0]
				}
			}
		})
	}
}

// fakeSess is an Engine.IO session that records what is written to it.
type fakeSess struct {
	mu      sync.Mutex
	written []string
}

func (f *fakeSess) ID() string { return "sess" }
func (f *fakeSess) NextReader() (bool, io.ReadCloser, error) {
	return false, nil, io.EOF
}
func (f *fakeSess) Send(text []byte) error {
	f.mu.Lock()
	f.written = append(f.written, string(text))
	f.mu.Unlock()
	return nil
}
func (f *fakeSess) WebSocket() *engine.WebSocket { return nil }
func (f *fakeSess) Close() error                 { return nil }
func (f *fakeSess) Transport() string            { return "polling" }
func (f *fakeSess) ClientIP() string             { return "127.0.0.1" }
func (f *fakeSess) Token() string                { return "" }
func (f *fakeSess) Verified() *tokens.Claims     { return nil }
func (f *fakeSess) Protocol() int                { return 4 }
func (f *fakeSess) CutOff() bool                 { return false }

func (f *fakeSess) lastText(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.written)
		var last string
		if n > 0 {
			last = f.written[n-1]
		}
		f.mu.Unlock()
		if n > 0 {
			return last
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("nothing written")
	return ""
}

func newTestConn(t testing.TB) (*Conn, *fakeSess) {
	t.Helper()
	s, err := NewServer(Options{
		Authenticate: func(string) (*tokens.Claims, error) { return nil, nil },
		Handler:      func(*Conn, string, []json.RawMessage) any { return nil },
		SendQueue:    1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	sess := &fakeSess{}
	return s.newConn(sess, &tokens.Claims{}), sess
}

// A retained session is handed only to its own user; another user's CONNECT with its
// pid leaves it for the right one.
func TestTakeRetainedSameUserOnly(t *testing.T) {
	c, _ := newTestConn(t)
	s := c.srv
	s.opts.RecoveryWindow = time.Minute
	s.retain(c, ReasonClientGone, &deliveryLog{})
	if s.Retained() != 0 {
		t.Fatal("a connection without a pid retained")
	}
	c.pid = "P"
	c.claims.Store(&tokens.Claims{})
	s.retain(c, ReasonClientClose, &deliveryLog{})
	if s.Retained() != 0 {
		t.Fatal("an explicit disconnect retained")
	}
	s.retain(c, ReasonClientGone, &deliveryLog{})
	if s.Retained() != 1 {
		t.Fatal("a dropped transport not retained")
	}
	if r := s.takeRetained("P", "someone else"); r != nil || s.Retained() != 1 {
		t.Fatal("handed to another user, or dropped by their attempt")
	}
	if r := s.takeRetained("P", c.UserID()); r == nil || r.id != c.id || s.Retained() != 0 {
		t.Fatalf("not handed to its user: %+v", r)
	}
}
