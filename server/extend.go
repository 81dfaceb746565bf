package server

import (
	"context"
	"encoding/json"
	"errors"
	"path"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/tokens"
)

// Extensions are a developer's own channel guards and room handlers, passed to RunWith.
// See "Extending" in the README for a worked example.
type Extensions struct {
	// Guards run before the default channel rules, in order; the first with an opinion
	// decides (see channels.Guard).
	Guards []channels.Guard
	// Rooms see what happens on the channels their Pattern matches.
	Rooms []Room
}

// Room handles the channels whose full name matches Pattern, a glob where * matches any
// run of characters (as in CHANNEL_ROLES). Every matching room is called, in order.
// Handlers run on the connection's read loop: they must not block for long.
type Room struct {
	Pattern string
	// OnSubscribe is called after a connection subscribed.
	OnSubscribe func(ctx context.Context, ev RoomEvent)
	// OnUnsubscribe is called after a connection left (also on disconnect).
	OnUnsubscribe func(ctx context.Context, ev RoomEvent)
	// OnClientEvent sees each client event before it is relayed. It may change ev.Data
	// to rewrite the event, return ErrDrop to drop it silently, or return an error to
	// refuse it: an *errs.Error is sent to the sender as it is, any other error as an
	// internal error.
	OnClientEvent func(ctx context.Context, ev *ClientEvent) error
}

// Trigger publishes from Go code, in-process, as the HTTP API does.
type Trigger interface {
	// Trigger sends event with data (any JSON-encodable value) to channels, except to
	// exceptSocketID when not empty. On private-encrypted- channels the server encrypts.
	Trigger(ctx context.Context, channels []string, event string, data any, exceptSocketID string) error
	// TriggerToUser sends event to every connection of userID.
	TriggerToUser(ctx context.Context, userID, event string, data any) error
	// Terminate closes every connection of userID.
	Terminate(ctx context.Context, userID string) error
}

// RoomEvent describes a subscribe or unsubscribe.
type RoomEvent struct {
	Channel  string
	SocketID string
	UserID   string
	Claims   *tokens.Claims
	Trigger  Trigger
}

// ClientEvent is a client-* event on its way to the channel's other subscribers.
type ClientEvent struct {
	Channel  string
	Event    string // client-<name>
	Data     json.RawMessage
	SocketID string
	UserID   string
	Claims   *tokens.Claims
	Trigger  Trigger
}

// ErrDrop, returned by Room.OnClientEvent, drops the event without telling the sender.
var ErrDrop = errors.New("client event dropped by a room handler")

// roomsFor returns the rooms whose pattern matches channel.
func roomsFor(rooms []Room, channel string) []Room {
	var out []Room
	for _, r := range rooms {
		if ok, _ := path.Match(r.Pattern, channel); ok {
			out = append(out, r)
		}
	}
	return out
}
