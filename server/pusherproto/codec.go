// Package pusherproto is the Pusher Channels protocol 7 endpoint (PRODUCT.md §15):
// pusher-js, Laravel Echo and Pusher's mobile SDKs connect to /app/{key} over a plain
// websocket and share the hub's channels with the socket.io engines. A message is
// delivered to both from one hub delivery: the hub's frame carries, besides the
// socket.io packet, a Pusher form built once on first use (EncodeMessage, through
// wire.Frame.Alt) and shared by every Pusher subscriber.
//
// pusher-js's source (src/core/connection/protocol/protocol.ts, connection.ts,
// channels/, user.ts) is the specification of the wire followed here.
package pusherproto

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/jetsocket/jetsocket/server/hub"
)

// Events of the protocol.
const (
	EventConnectionEstablished = "pusher:connection_established"
	EventError                 = "pusher:error"
	EventPing                  = "pusher:ping"
	EventPong                  = "pusher:pong"
	EventSubscribe             = "pusher:subscribe"
	EventUnsubscribe           = "pusher:unsubscribe"
	EventSignin                = "pusher:signin"
	EventSigninSuccess         = "pusher:signin_success"
	EventSubscriptionError     = "pusher:subscription_error"
	EventSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	EventMemberAdded           = "pusher_internal:member_added"
	EventMemberRemoved         = "pusher_internal:member_removed"
	EventSubscriptionCount     = "pusher_internal:subscription_count"
)

// Close codes, as pusher-js reads them (protocol.ts getCloseAction): 4000-4099 the
// client does not reconnect, 4100-4199 it reconnects after a back-off, 4200-4299 at
// once, 4300 and up it does not.
const (
	CloseUnknownApp    = 4001 // no app with that key
	CloseBadProtocol   = 4007 // a protocol version this server does not speak
	CloseUnauthorized  = 4009 // not signed in in time, or terminated by the HTTP API
	CloseOverCapacity  = 4100 // over a connection limit, or a slow consumer
	CloseShuttingDown  = 4200 // the server is going away: reconnect (to another node)
	ClosePongTimeout   = 4201 // no answer to a ping
	CloseClientEvRate  = 4301 // client events over CLIENT_EVENT_RATE
	CloseFrameTooLarge = 1009 // websocket's own: a frame past the hard read limit
)

// Codes of pusher:error {code, message} that leave the connection open. Pusher reserves
// 4300-4399 for "any other type of error"; a close code is also sent as pusher:error
// just before the close, as Pusher's own server does.
const (
	ErrBadMessage      = 4300 // not JSON, no event, bad data, an unknown event
	ErrPayloadTooLarge = 4302 // a frame over MAX_PAYLOAD_BYTES and its envelope
	ErrClientEvent     = 4303 // a client event refused (channel, subscription, size)
	ErrSignin          = 4304 // a pusher:signin refused
)

// inbound is a message from a client.
type inbound struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// decodeData reads a message's data into v. Clients send it as an object (pusher-js)
// or as a JSON string holding one (some other SDKs); both are accepted.
func decodeData(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, v)
}

// outbound is a message to a client. Data is always a JSON string, as the protocol
// has it (pusher-js parses it when it is JSON).
type outbound struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id,omitempty"`
}

// encode builds a message whose data is v encoded as JSON, then as a string.
func encode(event, channel string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed shapes are encoded here; none can fail.
		panic("pusherproto: encode " + event + ": " + err.Error())
	}
	return encodeRaw(event, channel, data, "")
}

// encodeRaw builds a message from data's JSON text: a JSON string is the data as it
// is (a trigger's data that was not JSON), anything else is carried as its text.
func encodeRaw(event, channel string, data json.RawMessage, userID string) []byte {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var str json.RawMessage
	if data[0] == '"' {
		str = data
	} else {
		b, _ := json.Marshal(string(data)) // a string always encodes
		str = b
	}
	b, _ := json.Marshal(outbound{Event: event, Channel: channel, Data: str, UserID: userID})
	return b
}

// errorMessage is pusher:error {code, message}.
func errorMessage(code int, message string) []byte {
	b, _ := json.Marshal(struct {
		Event string `json:"event"`
		Data  any    `json:"data"`
	}{EventError, map[string]any{"code": code, "message": message}})
	return b
}

// EncodeMessage is a hub message's Pusher form (the hub's alternate encoding): a
// trigger or client event as {event, channel, data, user_id?}, a presence member
// change as pusher_internal:member_added / member_removed. Events of the socket.io
// protocol with no Pusher meaning give nil: Pusher connections skip them.
func EncodeMessage(m hub.Message) []byte {
	if _, ok := hub.OnlineUser(m.Channel); ok {
		if m.Event == hub.EventMemberAdded || m.Event == hub.EventMemberRemoved {
			return encodeOnline(m)
		}
		return nil
	}
	switch {
	case m.Event == hub.EventMemberAdded:
		var p struct {
			UserID   string          `json:"user_id"`
			UserInfo json.RawMessage `json:"user_info"`
		}
		if json.Unmarshal(m.Payload, &p) != nil {
			return nil
		}
		return encode(EventMemberAdded, m.Channel, p)
	case m.Event == hub.EventMemberRemoved:
		var p struct {
			UserID string `json:"user_id"`
		}
		if json.Unmarshal(m.Payload, &p) != nil {
			return nil
		}
		return encode(EventMemberRemoved, m.Channel, p)
	case m.Event == hub.EventSubscriptionCount:
		return encodeRaw(EventSubscriptionCount, m.Channel, m.Data, "")
	case m.Payload != nil || strings.HasPrefix(m.Event, "jetsocket:"):
		return nil
	}
	return encodeRaw(m.Event, m.Channel, m.Data, m.UserID)
}
