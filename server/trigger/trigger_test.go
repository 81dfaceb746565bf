package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
)

type recorder struct{ msgs []hub.Message }

func (r *recorder) Publish(_ context.Context, m hub.Message) error {
	r.msgs = append(r.msgs, m)
	return nil
}

var master = bytes.Repeat([]byte{3}, 32)

func str(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

func TestValidate(t *testing.T) {
	s := New(&recorder{}, master, 100)
	enc, _ := encryption.Encrypt("private-encrypted-x", master, []byte(`{"a":1}`))
	encJSON, _ := json.Marshal(enc)
	many := make([]string, 101)
	for i := range many {
		many[i] = "c"
	}
	tests := []struct {
		name string
		ev   Event
		kind errs.Kind // 0 (Internal) means valid here
		data string
	}{
		{"json data parsed", Event{Name: "e", Channel: "c", Data: str(`{"x":[1,2]}`)}, 0, `{"x":[1,2]}`},
		{"plain string kept", Event{Name: "e", Channel: "c", Data: str("hello")}, 0, `"hello"`},
		{"number string parsed", Event{Name: "e", Channel: "c", Data: str("42")}, 0, `42`},
		{"user channel", Event{Name: "e", Channel: "#server-to-user-9", Data: str("1")}, 0, `1`},
		{"encrypted relayed", Event{Name: "e", Channel: "private-encrypted-x", Data: str(string(encJSON))}, 0, string(encJSON)},
		{"no name", Event{Channel: "c", Data: str("1")}, errs.Invalid, ""},
		{"reserved name", Event{Name: "jetsocket:member_added", Channel: "c", Data: str("1")}, errs.Invalid, ""},
		{"long name", Event{Name: strings.Repeat("n", 201), Channel: "c", Data: str("1")}, errs.Invalid, ""},
		{"data not a string", Event{Name: "e", Channel: "c", Data: json.RawMessage(`{"x":1}`)}, errs.Invalid, ""},
		{"no data", Event{Name: "e", Channel: "c"}, errs.Invalid, ""},
		{"null data", Event{Name: "e", Channel: "c", Data: json.RawMessage("null")}, errs.Invalid, ""},
		{"too large", Event{Name: "e", Channel: "c", Data: str(strings.Repeat("x", 101))}, errs.TooLarge, ""},
		{"no channel", Event{Name: "e", Data: str("1")}, errs.Invalid, ""},
		{"both", Event{Name: "e", Channel: "c", Channels: []string{"d"}, Data: str("1")}, errs.Invalid, ""},
		{"101 channels", Event{Name: "e", Channels: many, Data: str("1")}, errs.Invalid, ""},
		{"bad channel", Event{Name: "e", Channel: "a b", Data: str("1")}, errs.Invalid, ""},
		{"empty user", Event{Name: "e", Channel: "#server-to-user-", Data: str("1")}, errs.Invalid, ""},
		{"bad socket id", Event{Name: "e", Channel: "c", Data: str("1"), SocketID: "abc"}, errs.Invalid, ""},
		{"plaintext on encrypted", Event{Name: "e", Channel: "private-encrypted-x", Data: str(`{"a":1}`)}, errs.Invalid, ""},
		{"encrypted with others", Event{Name: "e", Channels: []string{"private-encrypted-x", "c"}, Data: str(string(encJSON))}, errs.Invalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, _, err := s.Validate(tt.ev)
			if tt.kind == 0 {
				if err != nil || string(data) != tt.data {
					t.Fatalf("got %s %v, want %s", data, err, tt.data)
				}
				return
			}
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("got %v, want kind %d", err, tt.kind)
			}
		})
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	r := &recorder{}
	s := New(r, nil, 100)
	err := s.PublishBatch(context.Background(), []Event{
		{Name: "a", Channel: "c", Data: str("1")},
		{Name: "b", Channel: "bad name", Data: str("2")},
	})
	if err == nil || !strings.Contains(err.Error(), "batch[1]") || len(r.msgs) != 0 {
		t.Fatalf("err=%v published=%d", err, len(r.msgs))
	}
	if err := s.PublishBatch(context.Background(), make([]Event, 11)); err == nil {
		t.Fatal("11 events accepted")
	}
}

func TestGoTriggerEncrypts(t *testing.T) {
	r := &recorder{}
	s := New(r, master, 1000)
	ctx := context.Background()
	if err := s.Trigger(ctx, []string{"news", "private-encrypted-x"}, "e", map[string]int{"secret": 7}, "1.2"); err != nil {
		t.Fatal(err)
	}
	if len(r.msgs) != 2 || string(r.msgs[0].Data) != `{"secret":7}` || r.msgs[0].ExceptSocketID != "1.2" {
		t.Fatalf("public: %+v", r.msgs)
	}
	if bytes.Contains(r.msgs[1].Data, []byte("secret")) {
		t.Fatalf("plaintext on the encrypted channel: %s", r.msgs[1].Data)
	}
	var p encryption.Payload
	_ = json.Unmarshal(r.msgs[1].Data, &p)
	plain, err := encryption.Decrypt("private-encrypted-x", master, p)
	if err != nil || string(plain) != `{"secret":7}` {
		t.Fatalf("decrypt: %s %v", plain, err)
	}
	if err := New(r, nil, 1000).Trigger(ctx, []string{"private-encrypted-x"}, "e", 1, ""); err == nil {
		t.Fatal("encrypted trigger without a master key")
	}
	if err := s.TriggerToUser(ctx, "5", "note", "hi"); err != nil || r.msgs[2].Channel != hub.UserChannel("5") {
		t.Fatalf("to user: %v %+v", err, r.msgs)
	}
	if err := s.Terminate(ctx, "5"); err != nil || !r.msgs[3].Terminate {
		t.Fatalf("terminate: %v", err)
	}
}
