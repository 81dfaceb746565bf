package pusherproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// subscribeData is pusher:subscribe's data. channel_data is a JSON string in the
// protocol; an object is taken as its text.
type subscribeData struct {
	Channel     string          `json:"channel"`
	Auth        string          `json:"auth"`
	ChannelData json.RawMessage `json:"channel_data"`
}

func (d subscribeData) channelData() string {
	raw := d.ChannelData
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// subscriptionError is pusher:subscription_error's data, as pusher-js reports its own
// authorization failures: {type, error, status}.
type subscriptionError struct {
	Type   string `json:"type"`
	Error  string `json:"error"`
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
}

// errorType names a refusal's kind in pusher-js's manner.
func errorType(e *errs.Error) string {
	switch e.Kind {
	case errs.Unauthorized, errs.Forbidden:
		return "AuthError"
	case errs.Invalid:
		if e.Code == errs.CodeInvalidChannel {
			return "InvalidChannel"
		}
		return "InvalidRequest"
	case errs.RateLimited:
		return "LimitReached"
	default:
		return "ServerError"
	}
}

// presenceData is a presence channel's members in the protocol's form.
type presenceData struct {
	Presence struct {
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
		Count int                        `json:"count"`
	} `json:"presence"`
}

func (s *Service) onSubscribe(c *Conn, m inbound) {
	var d subscribeData
	if err := decodeData(m.Data, &d); err != nil || d.Channel == "" {
		c.sendError(ErrBadMessage, "pusher:subscribe needs data {channel, auth?, channel_data?}")
		return
	}
	data, err := s.subscribe(c, d)
	if err != nil {
		e := errs.From(err)
		if e.Kind == errs.Internal {
			s.log.Error("pusher subscribe failed", "socket_id", c.id, "channel", d.Channel, "err", err)
		}
		s.metrics.SubscribeRefused.WithLabelValues(e.Code).Inc()
		c.send(encode(EventSubscriptionError, d.Channel, subscriptionError{errorType(e), e.Message, e.Kind.Status(), e.Code}))
		return
	}
	c.send(encode(EventSubscriptionSucceeded, d.Channel, data))
	if ch, err := channels.Parse(d.Channel); err == nil && ch.Cache() {
		ctx, cancel := context.WithTimeout(c.ctx, settleTimeout)
		defer cancel()
		s.sendCached(ctx, c, d.Channel)
	}
}

// subscribe applies the protocol's rules: public channels are open to any connection,
// private, presence and encrypted ones need the app's signature (auth) for this socket
// id; with PUSHER_REQUIRE_SIGNIN nothing is open before a sign-in. It returns the
// subscription_succeeded data.
func (s *Service) subscribe(c *Conn, d subscribeData) (any, error) {
	if hub.Internal(d.Channel) {
		return nil, errs.New(errs.Forbidden, errs.CodeInternalChannel, "internal channels (names starting with #) cannot be subscribed by clients")
	}
	ch, err := channels.Parse(d.Channel)
	if err != nil {
		return nil, err
	}
	if s.cfg.Pusher.RequireSignin && c.UserID() == "" {
		return nil, errs.New(errs.Unauthorized, errs.CodeSigninRequired, "sign in (pusher:signin) before subscribing")
	}
	already := s.hub.Subscribed(c, ch.Name)
	if !c.subscribeRate.Allow() {
		return nil, errs.New(errs.RateLimited, errs.CodeRateLimited, "too many subscribe attempts; slow down")
	}
	if !already && s.hub.Subscriptions(c) >= s.cfg.MaxSubscriptions {
		return nil, errs.New(errs.RateLimited, errs.CodeTooManySubscriptions, fmt.Sprintf("a connection may subscribe to at most %d channels", s.cfg.MaxSubscriptions))
	}
	var member *hub.Member
	if ch.Kind != channels.Public {
		if d.Auth == "" {
			return nil, errs.New(errs.Unauthorized, errs.CodeAuthRequired, ch.Kind.String()+" channels need auth signed by the app (channelAuthorization)")
		}
		pd, err := channels.VerifyAuth(s.cfg.AppKey, s.cfg.AppSecret, channels.Request{
			Channel: ch, SocketID: c.id, Auth: d.Auth, ChannelData: d.channelData(),
		})
		if err != nil {
			return nil, err
		}
		if pd != nil {
			member = &hub.Member{UserID: pd.UserID, Info: pd.UserInfo}
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), settleTimeout)
	defer cancel()
	members, err := s.hub.Subscribe(ctx, c, ch.Name, member, s.cfg.PresenceMaxMembers)
	if errors.Is(err, hub.ErrFull) {
		return nil, errs.New(errs.RateLimited, errs.CodePresenceFull, fmt.Sprintf("presence channel is full (%d members)", s.cfg.PresenceMaxMembers))
	}
	if err != nil {
		return nil, fmt.Errorf("hub subscribe %s: %w", ch.Name, err)
	}
	if !already {
		s.metrics.Subscriptions.WithLabelValues(ch.Kind.String()).Inc()
	}
	if member == nil {
		return struct{}{}, nil
	}
	c.mu.Lock()
	if c.members == nil {
		c.members = make(map[string]string)
	}
	c.members[ch.Name] = member.UserID
	c.mu.Unlock()
	var p presenceData
	p.Presence.Count = len(members)
	p.Presence.IDs = make([]string, len(members))
	p.Presence.Hash = make(map[string]json.RawMessage, len(members))
	for i, m := range members {
		p.Presence.IDs[i] = m.UserID
		p.Presence.Hash[m.UserID] = m.Info
	}
	return p, nil
}

func (s *Service) onUnsubscribe(c *Conn, m inbound) {
	var d subscribeData
	if err := decodeData(m.Data, &d); err != nil || d.Channel == "" {
		c.sendError(ErrBadMessage, "pusher:unsubscribe needs data {channel}")
		return
	}
	if hub.Internal(d.Channel) || !s.hub.Subscribed(c, d.Channel) {
		return // a client cannot leave its user's channel; leaving another is harmless
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), settleTimeout)
	defer cancel()
	s.leave(ctx, c, d.Channel)
}

func (s *Service) leave(ctx context.Context, c *Conn, channel string) {
	s.hub.Unsubscribe(ctx, c, channel)
	if hub.Internal(channel) {
		return
	}
	c.mu.Lock()
	delete(c.members, channel)
	c.mu.Unlock()
	if ch, err := channels.Parse(channel); err == nil {
		s.metrics.Subscriptions.WithLabelValues(ch.Kind.String()).Dec()
	}
}

// signinData is pusher:signin's data.
type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// onSignin checks the app's signature over socket_id::user::user_data; the connection
// then is that user's: on its #server-to-user-<id> channel, reached by sendToUser and
// terminate_connections. A refusal is a pusher:error; the connection stays anonymous.
func (s *Service) onSignin(c *Conn, m inbound) {
	var d signinData
	if err := decodeData(m.Data, &d); err != nil || d.Auth == "" || d.UserData == "" {
		c.sendError(ErrSignin, "pusher:signin needs data {auth, user_data}")
		return
	}
	id, err := channels.VerifyUser(s.cfg.AppKey, s.cfg.AppSecret, c.id, d.Auth, d.UserData)
	if err != nil {
		c.sendError(ErrSignin, errs.From(err).Message)
		return
	}
	c.mu.Lock()
	prev := c.user
	if prev == "" {
		// A signed-in connection is its user's: MAX_CONNECTIONS_PER_USER counts it with
		// the user's socket.io connections. Over it, the connection stays anonymous.
		if !s.userConns.Acquire(id, s.cfg.MaxConnsPerUser) {
			c.mu.Unlock()
			s.metrics.ConnectionsRefused.WithLabelValues("per_user").Inc()
			c.sendError(ErrSignin, "this user has too many open connections")
			return
		}
		c.user, c.userCounted = id, true
		if c.signin != nil {
			c.signin.Stop()
		}
	}
	c.mu.Unlock()
	if prev != "" && prev != id {
		c.sendError(ErrSignin, "this connection is signed in as another user already")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), settleTimeout)
	defer cancel()
	if _, err := s.hub.Subscribe(ctx, c, hub.UserChannel(id), nil, 0); err != nil {
		s.log.Error("pusher user channel", "socket_id", c.id, "err", err)
	}
	// Online while signed in: watchlists follow this channel's members.
	if err := s.hub.GoOnline(ctx, c, id); err != nil {
		s.log.Error("pusher online channel", "socket_id", c.id, "err", err)
	}
	c.send(encode(EventSigninSuccess, "", map[string]string{"user_data": d.UserData}))
	var u struct {
		Watchlist []string `json:"watchlist"`
	}
	if json.Unmarshal([]byte(d.UserData), &u) == nil && len(u.Watchlist) > 0 && prev == "" {
		s.watch(ctx, c, u.Watchlist)
	}
}

// onClientEvent relays a client-* event to the channel's other subscribers, on either
// protocol. Over CLIENT_EVENT_RATE the connection is closed with 4301, as pusher-js
// expects; other refusals are a pusher:error and the event is dropped.
func (s *Service) onClientEvent(c *Conn, m inbound) {
	refuse := func(code, msg string) {
		s.metrics.ClientEventsDropped.WithLabelValues(code).Inc()
		c.sendError(ErrClientEvent, msg)
	}
	if len(m.Event) > 200 {
		refuse(errs.CodeInvalidEvent, "event names are limited to 200 characters")
		return
	}
	ch, err := channels.Parse(m.Channel)
	if err != nil {
		refuse(errs.CodeInvalidChannel, errs.From(err).Message)
		return
	}
	if !ch.ClientEventsAllowed() {
		refuse(errs.CodeClientEventsForbidden, "client events are only allowed on private- and presence- channels")
		return
	}
	if !s.hub.Subscribed(c, ch.Name) {
		refuse(errs.CodeNotSubscribed, "subscribe to the channel before sending client events on it")
		return
	}
	if len(m.Data) > s.cfg.MaxPayloadBytes {
		refuse(errs.CodePayloadTooLarge, fmt.Sprintf("client event data is limited to %d bytes", s.cfg.MaxPayloadBytes))
		return
	}
	if !c.clientEvents.Allow() {
		s.metrics.ClientEventsDropped.WithLabelValues(errs.CodeRateLimited).Inc()
		msg := fmt.Sprintf("client events are limited to %d per second", s.cfg.ClientEventRate)
		c.closeWith(CloseClientEvRate, ReasonClientEvRate, errorMessage(CloseClientEvRate, msg))
		return
	}
	data := m.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	c.mu.Lock()
	userID := c.members[ch.Name]
	if userID == "" {
		userID = c.user
	}
	c.mu.Unlock()
	if err := s.hub.Publish(c.ctx, hub.Message{Channel: ch.Name, Event: m.Event, Data: data, UserID: userID, ExceptSocketID: c.id}); err != nil {
		s.log.Error("pusher client event", "socket_id", c.id, "channel", ch.Name, "err", err)
		c.sendError(ErrClientEvent, "internal server error")
		return
	}
	s.metrics.Published.WithLabelValues("client").Inc()
	s.webhooks(webhook.Event{
		Name: webhook.ClientEvent, Channel: ch.Name, Event: m.Event,
		Data: string(data), SocketID: c.id, UserID: userID,
	})
}
