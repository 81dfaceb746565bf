package pusherproto

import (
	"encoding/json"
	"testing"

	"github.com/jetsocket/jetsocket/server/hub"
)

func TestEncodeMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    hub.Message
		want string // "" for nil
	}{
		{"object data as its JSON text in a string",
			hub.Message{Channel: "c", Event: "e", Data: json.RawMessage(`{"a":1}`)},
			`{"event":"e","channel":"c","data":"{\"a\":1}"}`},
		{"a plain string trigger stays that string",
			hub.Message{Channel: "c", Event: "e", Data: json.RawMessage(`"hi"`)},
			`{"event":"e","channel":"c","data":"hi"}`},
		{"a number",
			hub.Message{Channel: "c", Event: "e", Data: json.RawMessage(`42`)},
			`{"event":"e","channel":"c","data":"42"}`},
		{"no data is null",
			hub.Message{Channel: "c", Event: "e"},
			`{"event":"e","channel":"c","data":"null"}`},
		{"a client event carries user_id",
			hub.Message{Channel: "presence-x", Event: "client-t", Data: json.RawMessage(`{}`), UserID: "u1"},
			`{"event":"client-t","channel":"presence-x","data":"{}","user_id":"u1"}`},
		{"member_added in Pusher's form",
			hub.Message{Channel: "presence-x", Event: hub.EventMemberAdded, Payload: json.RawMessage(`{"channel":"presence-x","user_id":"u","user_info":{"name":"U"}}`)},
			`{"event":"pusher_internal:member_added","channel":"presence-x","data":"{\"user_id\":\"u\",\"user_info\":{\"name\":\"U\"}}"}`},
		{"member_removed in Pusher's form",
			hub.Message{Channel: "presence-x", Event: hub.EventMemberRemoved, Payload: json.RawMessage(`{"channel":"presence-x","user_id":"u"}`)},
			`{"event":"pusher_internal:member_removed","channel":"presence-x","data":"{\"user_id\":\"u\"}"}`},
		{"subscription_count",
			hub.Message{Channel: "c", Event: hub.EventSubscriptionCount, Data: json.RawMessage(`{"subscription_count":3}`)},
			`{"event":"pusher_internal:subscription_count","channel":"c","data":"{\"subscription_count\":3}"}`},
		{"a user coming online is a watchlist event",
			hub.Message{Channel: hub.OnlineChannel("u"), Event: hub.EventMemberAdded, Payload: json.RawMessage(`{"channel":"#online-u","user_id":"u","user_info":{}}`)},
			`{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[\"u\"]}]}"}`},
		{"and going offline",
			hub.Message{Channel: hub.OnlineChannel("u"), Event: hub.EventMemberRemoved, Payload: json.RawMessage(`{"channel":"#online-u","user_id":"u"}`)},
			`{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"offline\",\"user_ids\":[\"u\"]}]}"}`},
		{"a socket.io protocol event is not for Pusher clients",
			hub.Message{Channel: "c", Event: "jetsocket:something", Data: json.RawMessage(`{}`)}, ""},
		{"a whole-payload event is not either",
			hub.Message{Channel: "c", Event: "x", Payload: json.RawMessage(`{}`)}, ""},
		{"a broken member payload is skipped",
			hub.Message{Channel: "presence-x", Event: hub.EventMemberAdded, Payload: json.RawMessage(`{`)}, ""},
	} {
		got := EncodeMessage(tc.m)
		if tc.want == "" {
			if got != nil {
				t.Errorf("%s: got %s, want nil", tc.name, got)
			}
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestDecodeData(t *testing.T) {
	var d subscribeData
	for _, raw := range []string{`{"channel":"a","channel_data":"{\"user_id\":1}"}`, `"{\"channel\":\"a\",\"channel_data\":\"{\\\"user_id\\\":1}\"}"`} {
		d = subscribeData{}
		if err := decodeData(json.RawMessage(raw), &d); err != nil || d.Channel != "a" || d.channelData() != `{"user_id":1}` {
			t.Fatalf("%s: %+v %v", raw, d, err)
		}
	}
	d = subscribeData{ChannelData: json.RawMessage(`{"user_id":"x"}`)}
	if d.channelData() != `{"user_id":"x"}` {
		t.Fatal("channel_data as an object is taken as its text")
	}
	for _, raw := range []string{`"{"`, `[1]`, `"[1]"`, ``} {
		if err := decodeData(json.RawMessage(raw), &d); err == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	if got := string(errorMessage(4301, "slow down")); got != `{"event":"pusher:error","data":{"code":4301,"message":"slow down"}}` {
		t.Fatal(got)
	}
}
