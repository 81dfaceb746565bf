package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in      string
		typ     PacketType
		nsp     string
		id      int64
		event   string
		args    []string
		wantErr bool
	}{
		{in: "0", typ: PacketConnect, nsp: "/", id: NoAck},
		{in: "0/chat", typ: PacketConnect, nsp: "/chat", id: NoAck},
		{in: "0/chat?token=x", typ: PacketConnect, nsp: "/chat", id: NoAck},
		{in: "1", typ: PacketDisconnect, nsp: "/", id: NoAck},
		{in: `2["ping"]`, typ: PacketEvent, nsp: "/", id: NoAck, event: "ping", args: []string{}},
		{in: `2["sub",{"channel":"a"}]`, typ: PacketEvent, nsp: "/", id: NoAck, event: "sub", args: []string{`{"channel":"a"}`}},
		{in: `212["sub",{"channel":"a"},3]`, typ: PacketEvent, nsp: "/", id: 12, event: "sub", args: []string{`{"channel":"a"}`, "3"}},
		{in: `2/chat,7["x"]`, typ: PacketEvent, nsp: "/chat", id: 7, event: "x", args: []string{}},
		{in: `2["a,b",1]`, typ: PacketEvent, nsp: "/", id: NoAck, event: "a,b", args: []string{"1"}},
		{in: `35[{"ok":true}]`, typ: PacketAck, nsp: "/", id: 5},
		{in: `51-["up",{"_placeholder":true,"num":0}]`, typ: PacketBinaryEvent, nsp: "/", id: NoAck, event: "up", args: []string{`{"_placeholder":true,"num":0}`}},
		{in: `4"boom"`, typ: PacketError, nsp: "/", id: NoAck},
		{in: "", wantErr: true},
		{in: "9", wantErr: true},
		{in: "x", wantErr: true},
		{in: "2", wantErr: true},
		{in: "2[]", wantErr: true},
		{in: `2[1,2]`, wantErr: true},
		{in: `2[null]`, wantErr: true}, // json.Unmarshal reads null into a string as ""
		{in: `2[null,{"channel":"a"}]`, wantErr: true},
		{in: `2{"a":1}`, wantErr: true},
		{in: `2["x",`, wantErr: true},
		{in: `2"x"`, wantErr: true},
		{in: "3", wantErr: true},
		{in: "5[\"x\"]", wantErr: true},
		{in: "5x-[\"x\"]", wantErr: true},
		{in: `299999999999999999999["x"]`, wantErr: true},
		{in: `29007199254740992["x"]`, wantErr: true},
		{in: "2/" + strings.Repeat("n", 200) + `,["x"]`, wantErr: true},
		{in: `0{`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := DecodePacket([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if p.Type != tt.typ || p.Namespace != tt.nsp || p.ID != tt.id || p.Event != tt.event {
				t.Fatalf("got type=%d nsp=%q id=%d event=%q", p.Type, p.Namespace, p.ID, p.Event)
			}
			if tt.args != nil {
				if len(p.Args) != len(tt.args) {
					t.Fatalf("args = %q, want %q", p.Args, tt.args)
				}
				for i := range tt.args {
					if string(p.Args[i]) != tt.args[i] {
						t.Fatalf("arg %d = %s, want %s", i, p.Args[i], tt.args[i])
					}
				}
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	frame, err := EncodeEvent("jetsocket:x", map[string]any{"channel": "c", "data": "hi \"there\""})
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePacket(frame)
	if err != nil {
		t.Fatalf("decode %s: %v", frame, err)
	}
	var got map[string]string
	if err := json.Unmarshal(p.Args[0], &got); err != nil || p.Event != "jetsocket:x" || got["data"] != `hi "there"` {
		t.Fatalf("round trip: %s -> %+v %v", frame, p, err)
	}

	raw, err := EncodeEvent("e", json.RawMessage(`{"a":1}`))
	if err != nil || string(raw) != `2["e",{"a":1}]` {
		t.Fatalf("raw payload: %s %v", raw, err)
	}
	if _, err := EncodeEvent("e", json.RawMessage(`{"a":`)); err == nil {
		t.Fatal("invalid raw JSON accepted")
	}

	ack, err := EncodeAck(42, map[string]bool{"ok": true})
	if err != nil || string(ack) != `342[{"ok":true}]` {
		t.Fatalf("ack: %s %v", ack, err)
	}
	if p, err := DecodePacket(ack); err != nil || p.Type != PacketAck || p.ID != 42 {
		t.Fatalf("ack decode: %+v %v", p, err)
	}
	if got := string(EncodeError("/", "bad")); got != `4"bad"` {
		t.Fatalf("root error packet: %s", got)
	}
	if got := string(EncodeError("/chat", "Invalid namespace")); got != `4/chat,"Invalid namespace"` {
		t.Fatalf("namespace error packet: %s", got)
	}
	if got := string(EncodeConnectError("/", "invalid_token", map[string]any{"status": 401})); got != `4{"data":{"status":401},"message":"invalid_token"}` {
		t.Fatalf("connect error packet: %s", got)
	}
	if got := string(EncodeConnectError("/x", "Invalid namespace", nil)); got != `4/x,{"message":"Invalid namespace"}` {
		t.Fatalf("namespace connect error packet: %s", got)
	}
	for _, tt := range []struct {
		data any
		want string
	}{{nil, "0"}, {map[string]string{"sid": "1.2"}, `0{"sid":"1.2"}`}} {
		if got, err := EncodeConnect(tt.data); err != nil || string(got) != tt.want {
			t.Fatalf("connect packet %v: %s %v", tt.data, got, err)
		}
	}
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"0", "1", `2["a",{"b":1}]`, `212["sub",{"channel":"x"}]`, `2/n,3["x"]`, `35[1]`, `51-["x",{"_placeholder":true,"num":0}]`, `4"e"`, "2[", "5-", "/", "2/,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			return
		}
		if p.Type > PacketBinaryAck {
			t.Fatalf("type %d accepted", p.Type)
		}
		if p.ID < NoAck || p.ID > maxAckID {
			t.Fatalf("ack id %d", p.ID)
		}
		if p.Type == PacketEvent {
			// A decoded event re-encodes and decodes to the same name and arguments.
			args := make([]any, len(p.Args))
			for i, a := range p.Args {
				args[i] = a
			}
			frame, err := EncodeEvent(p.Event, json.RawMessage(must(json.Marshal(args))))
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			q, err := DecodePacket(frame)
			if err != nil || q.Event != p.Event {
				t.Fatalf("re-decode %s: %+v %v", frame, q, err)
			}
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkDecodePacket(b *testing.B) {
	frame := []byte(`217["jetsocket:subscribe",{"channel":"presence-room-42"}]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePacket(frame); err != nil {
			b.Fatal(err)
		}
	}
}
