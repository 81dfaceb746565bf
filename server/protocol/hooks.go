package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"path"

	"github.com/jetsocket/jetsocket/tokens"
)

// ChannelHooks are a developer's callbacks on the channels whose full name matches
// Pattern, a glob where * matches any run of characters (as in CHANNEL_ROLES). Every
// matching set is called, in order. They run on the connection's read loop: they must
// not block for long.
type ChannelHooks struct {
	Pattern string
	// OnSubscribe is called after a connection subscribed.
	OnSubscribe func(ctx context.Context, s Subscription)
	// OnUnsubscribe is called after a connection left (also on disconnect, and when a
	// refresh took the channel away).
	OnUnsubscribe func(ctx context.Context, s Subscription)
	// OnClientEvent sees each client event before it is relayed. It may change ev.Data
	// to rewrite the event, return ErrDrop to drop it silently, or return an error to
	// refuse it: an *errs.Error is sent to the sender as it is, any other error as an
	// internal error.
	OnClientEvent func(ctx context.Context, ev *ClientEvent) error
}

// Subscription describes a subscribe or unsubscribe.
type Subscription struct {
	Channel  string
	SocketID string
	UserID   string
	Claims   *tokens.Claims
	Trigger  Trigger
	Channels Queries
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
	Channels Queries
}

// ErrDrop, returned by ChannelHooks.OnClientEvent, drops the event without telling the
// sender.
var ErrDrop = errors.New("client event dropped by a channel hook")

// hooksFor returns the hooks whose pattern matches channel.
func (s *Service) hooksFor(channel string) []ChannelHooks {
	var out []ChannelHooks
	for _, h := range s.hooks {
		if ok, _ := path.Match(h.Pattern, channel); ok {
			out = append(out, h)
		}
	}
	return out
}
