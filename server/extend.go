package server

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/handlers"
	"github.com/jetsocket/jetsocket/middleware"
	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/protocol"
	"github.com/jetsocket/jetsocket/tokens"
)

// Extensions are a developer's own additions, passed to RunWith. They have the built-ins'
// power: a custom event goes through the same table as jetsocket:subscribe. See
// docs/extending.md for a worked example.
type Extensions struct {
	// Events are custom socket events with acks (protocol.On). Their names may not
	// start with "jetsocket:" or "client-".
	Events []protocol.Event
	// Guards run before the default channel rules, in order; the first with an opinion
	// decides (see channels.Guard).
	Guards []channels.Guard
	// ChannelHooks see the subscribes, unsubscribes and client events of the channels
	// their pattern matches.
	ChannelHooks []protocol.ChannelHooks
	// Routes, if set, adds Gin routes beside the server's (a route that exists already
	// is an error at start, and so is one under /apps/, the signed HTTP API's prefix,
	// whose signature check would not cover it). A panic in one is answered 500; one in
	// an event, guard or hook is answered as a 500 refusal (docs/hardening.md).
	Routes func(r gin.IRouter, s Services)
}

// Services are what a developer's routes use.
type Services struct {
	// Bearer is a middleware that checks "Authorization: Bearer <JWT>" as the socket
	// handshake checks its token (401 {error:"invalid_token", message} otherwise) and
	// puts the claims on the request (Claims).
	Bearer gin.HandlerFunc
	// Trigger publishes from Go, as the HTTP API does (encrypting on
	// private-encrypted- channels).
	Trigger protocol.Trigger
	// Channels answers the channel, presence and history queries.
	Channels protocol.Queries
	Log      *slog.Logger
}

// Claims are the claims Bearer put on the request, or nil.
func (Services) Claims(c *gin.Context) *tokens.Claims { return middleware.ClaimsOf(c) }

// Abort answers the request with err as the server answers its own errors: an
// *errs.Error with its status and {error, message}, anything else as a logged 500.
func (s Services) Abort(c *gin.Context, err error) { handlers.Abort(c, s.Log, err) }
