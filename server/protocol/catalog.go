package protocol

import (
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket"
)

// The catalogue: every socket event name, error code and limit of the protocol, in one
// place. The tables of docs/clients.md and docs/channels.md mirror it. Names other packages own
// are listed here by reference, so that there is still one definition of each.

// Events clients send (each has a handler in the table: see builtins).
const (
	EventSubscribe   = "jetsocket:subscribe"
	EventUnsubscribe = "jetsocket:unsubscribe"
	EventRefresh     = "jetsocket:refresh"
	EventSignin      = "jetsocket:signin"
	EventPing        = "jetsocket:ping"
	// ClientEventPrefix starts the names of client events, relayed to a channel's other
	// subscribers.
	ClientEventPrefix = "client-"
)

// Events the server emits.
const (
	EventConnectionEstablished = socket.EventConnectionEstablished // {socket_id, user_id}
	EventError                 = socket.EventError                 // {code, message}
	EventSubscriptionSucceeded = "jetsocket:subscription_succeeded"
	EventSubscriptionError     = "jetsocket:subscription_error" // {channel, status, code, error}
	EventMemberAdded           = hub.EventMemberAdded
	EventMemberRemoved         = hub.EventMemberRemoved
	EventTokenExpired          = "jetsocket:token_expired" // {expired_at}
	// EventCacheMiss follows the ack of a cache channel's subscribe when the channel has
	// no last event to send: {channel}. The JS client fires it as pusher:cache_miss.
	EventCacheMiss = "jetsocket:cache_miss"
	// EventWatchlist follows a sign-in whose user_data has a watchlist, with the watched
	// users' state, then comes with each change: {events: [{name: "online"|"offline",
	// user_ids}]}. The JS client fires it as pusher-js does (user.watchlist online/offline).
	EventWatchlist = hub.EventWatchlist
	// EventSubscriptionCount carries a channel's subscription count (SUBSCRIPTION_COUNT):
	// {channel, data: {subscription_count}}. The JS client fires pusher:subscription_count.
	EventSubscriptionCount = hub.EventSubscriptionCount
	// EventTerminated goes to each connection terminate_connections ends, before the
	// close: {code: "terminated", reason}. Clients should not reconnect on it.
	EventTerminated = hub.EventTerminated
	// EventSkip goes to the connection an API trigger's socket_id excluded, on a channel
	// it is subscribed to that keeps history, instead of the event: {channel, epoch,
	// offset}, so that its position moves on without a gap (and in a replay, for each
	// publication that excluded it).
	EventSkip = hub.EventSkip
)

// ReservedPrefix starts the names of the built-in events; a developer's events may not
// use it, nor ClientEventPrefix.
const ReservedPrefix = "jetsocket:"

// Error codes of refusals (acks {ok:false, status, code, error}, subscription_error and
// jetsocket:error), by reference to the one catalogue of codes, server/errs/codes.go
// (which also holds those of the channel rules and delegated authorization, made in
// package channels, and of the transport, made in package socket).
const (
	CodeUnknownEvent            = errs.CodeUnknownEvent
	CodeInvalidPayload          = errs.CodeInvalidPayload
	CodeInvalidEvent            = errs.CodeInvalidEvent
	CodeInternalChannel         = errs.CodeInternalChannel
	CodeRateLimited             = errs.CodeRateLimited
	CodeTooManySubscriptions    = errs.CodeTooManySubscriptions
	CodePresenceFull            = errs.CodePresenceFull
	CodeTokenExpired            = errs.CodeTokenExpired
	CodeInvalidToken            = errs.CodeInvalidToken
	CodeForbidden               = errs.CodeForbidden
	CodeEncryptionNotConfigured = errs.CodeEncryptionNotConfigured
	CodeClientEventsForbidden   = errs.CodeClientEventsForbidden
	CodeNotSubscribed           = errs.CodeNotSubscribed
	CodePayloadTooLarge         = errs.CodePayloadTooLarge
	CodeTooManyConnections      = errs.CodeTooManyConnections
	CodeInternal                = errs.CodeInternal
	CodeConnectionClosed        = errs.CodeConnectionClosed
)

// Limits that are not configuration.
const (
	// MaxClientEventName is Pusher's limit on event names.
	MaxClientEventName = 200
	// MaxChannelName is the longest channel name, as in Pusher.
	MaxChannelName = channels.MaxNameLength
	// RequestTimeout bounds each event's handler, so that a Redis call made for a
	// connection cannot hold its read loop for ever.
	RequestTimeout = 10 * time.Second
)

// ReasonTokenExpired closes a connection whose token expired without a refresh.
const ReasonTokenExpired = "token expired"

// ReasonConnectionClosed closes a connection Connect is given a second time, or after
// its Disconnect: its state is made once.
const ReasonConnectionClosed = "connection state ended"
