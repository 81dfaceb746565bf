package wire

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

func TestFrameHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 124, 125, 126, 65_534, 65_535, 65_536, 1 << 20} {
		f := NewFrame(make([]byte, n))
		if f.Len() != n || len(f.Text()) != n {
			t.Fatalf("%d: Len %d", n, f.Len())
		}
		hdr := f.wire[:f.text-1]
		if hdr[0] != 0x81 || f.wire[f.text-1] != '4' {
			t.Fatalf("%d: header %x", n, hdr)
		}
		var l int
		switch {
		case hdr[1] < 126:
			l = int(hdr[1])
		case hdr[1] == 126:
			l = int(binary.BigEndian.Uint16(hdr[2:]))
		default:
			l = int(binary.BigEndian.Uint64(hdr[2:]))
		}
		if l != n+1 {
			t.Fatalf("%d: header says %d", n, l)
		}
	}
}

func TestEncode(t *testing.T) {
	ev, err := EncodeEvent("e", map[string]string{"channel": "c"})
	if err != nil || string(ev) != `2["e",{"channel":"c"}]` {
		t.Fatalf("event: %s %v", ev, err)
	}
	raw, err := EncodeEvent("e", json.RawMessage(`{"a":1}`))
	if err != nil || string(raw) != `2["e",{"a":1}]` {
		t.Fatalf("raw payload: %s %v", raw, err)
	}
	if _, err := EncodeEvent("e", json.RawMessage(`{"a":`)); err == nil {
		t.Fatal("invalid raw JSON accepted")
	}
	if _, err := EncodeEvent("e", func() {}); err == nil {
		t.Fatal("unencodable payload accepted")
	}
	ack, err := EncodeAck(42, map[string]bool{"ok": true})
	if err != nil || string(ack) != `342[{"ok":true}]` {
		t.Fatalf("ack: %s %v", ack, err)
	}
	f := NewFrame(ack)
	if string(f.Text()) != string(ack) || string(f.Bytes()[2:]) != "4"+string(ack) {
		t.Fatalf("frame: % x", f.Bytes())
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	payload := json.RawMessage(`{"channel":"presence-room","data":{"text":"hello world","n":12345}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent("message", payload); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPubOffsetForm(t *testing.T) {
	ev, _ := EncodeEvent("e", json.RawMessage(`{"channel":"a:b","offset":7}`))
	f := NewFrame(ev).WithPub("a:b", "EP", 7)
	p := f.Pub()
	if p == nil || p.OffsetString() != "EP:7:a:b" {
		t.Fatalf("pub %+v", p)
	}
	w := p.WithOffset()
	if string(w.Text()) != `2["e",{"channel":"a:b","offset":7},"EP:7:a:b"]` {
		t.Fatalf("with offset: %s", w.Text())
	}
	if &p.WithOffset().Bytes()[0] != &w.Bytes()[0] {
		t.Fatal("built twice")
	}
	if string(f.Text()) != string(ev) {
		t.Fatal("the plain frame changed")
	}
	ch, ep, off, ok := ParseOffset("EP:7:a:b")
	if !ok || ch != "a:b" || ep != "EP" || off != 7 {
		t.Fatalf("parse: %q %q %d %v", ch, ep, off, ok)
	}
	for _, bad := range []string{"", "EP", "EP:7", "EP:x:c", ":7:c", "EP:0:c", "EP:7:"} {
		if _, _, _, ok := ParseOffset(bad); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
	if NewFrame(ev).Pub() != nil {
		t.Fatal("a plain frame has no pub")
	}
}
