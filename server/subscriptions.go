package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket"
)

// Socket events of channel subscriptions.
const (
	eventSubscribe             = "jetsocket:subscribe"
	eventUnsubscribe           = "jetsocket:unsubscribe"
	eventSubscriptionSucceeded = "jetsocket:subscription_succeeded"
	eventSubscriptionError     = "jetsocket:subscription_error"
	clientEventPrefix          = "client-"
)

// maxClientEventName is Pusher's limit on event names.
const maxClientEventName = 200

// connState is what the server keeps per connection besides the hub's subscriptions.
type connState struct {
	subscribe    *rate.Limiter
	clientEvents *rate.Limiter
	userCounted  bool // holds a place in the per-user connection count
	ipCounted    bool

	mu       sync.Mutex
	expiry   *time.Timer
	signedIn string // the user a backend signed this connection in as (jetsocket:signin)
}

func (st *connState) stopExpiry() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.expiry != nil {
		st.expiry.Stop()
	}
}

// connStates holds connState by socket id, for the lifetime of each connection.
type connStates struct {
	mu sync.Mutex
	m  map[string]*connState
	mk func() *connState
}

func (l *connStates) get(id string) *connState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.m[id]
	if st == nil {
		st = l.mk()
		l.m[id] = st
	}
	return st
}

func (l *connStates) take(id string) *connState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.m[id]
	delete(l.m, id)
	return st
}

type subscribeRequest struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth,omitempty"`
	ChannelData string `json:"channel_data,omitempty"`
}

// presenceInfo is the presence part of a subscribe answer.
type presenceInfo struct {
	Count int                        `json:"count"`
	IDs   []string                   `json:"ids"`
	Hash  map[string]json.RawMessage `json:"hash"`
}

// subscribeResult is both the ack and the subscription_succeeded/_error payload.
type subscribeResult struct {
	OK           bool          `json:"ok"`
	Channel      string        `json:"channel"`
	Presence     *presenceInfo `json:"presence,omitempty"`
	SharedSecret string        `json:"shared_secret,omitempty"`
	Status       int           `json:"status,omitempty"`
	Code         string        `json:"code,omitempty"`
	Error        string        `json:"error,omitempty"`
}

func (a *app) registerChannelHandlers() {
	a.sockets.Handle(eventSubscribe, a.onSubscribe)
	a.sockets.Handle(eventUnsubscribe, a.onUnsubscribe)
	a.sockets.Handle(eventRefresh, a.onRefresh)
	a.sockets.Handle(eventSignin, a.onSignin)
	a.sockets.HandlePrefix(clientEventPrefix, a.onClientEvent)
}

func (a *app) onSubscribe(c *socket.Conn, _ string, args []json.RawMessage) any {
	a.metrics.MessagesIn.WithLabelValues("subscribe").Inc()
	var req subscribeRequest
	res := subscribeResult{}
	err := decodeArg(args, &req)
	res.Channel = req.Channel
	if err == nil {
		var p *presenceInfo
		var secret string
		p, secret, err = a.subscribe(c, req)
		res.Presence, res.SharedSecret = p, secret
	}
	if err != nil {
		e := a.socketError(err, "subscribe", c)
		res.Status, res.Code, res.Error = e.Kind.Status(), e.Code, e.Message
		a.metrics.SubscribeRefused.WithLabelValues(e.Code).Inc()
		c.Emit(eventSubscriptionError, struct {
			Channel string `json:"channel"`
			Status  int    `json:"status"`
			Code    string `json:"code"`
			Error   string `json:"error"`
		}{res.Channel, res.Status, res.Code, res.Error})
		return res
	}
	res.OK = true
	c.Emit(eventSubscriptionSucceeded, res)
	return res
}

func (a *app) subscribe(c *socket.Conn, req subscribeRequest) (*presenceInfo, string, error) {
	ch, err := channels.Parse(req.Channel)
	if err != nil {
		return nil, "", err
	}
	already := a.hub.Subscribed(c.ID(), ch.Name)
	if !a.conns.get(c.ID()).subscribe.Allow() {
		return nil, "", errs.New(errs.RateLimited, "rate_limited", "too many subscribe attempts; slow down")
	}
	if !already && a.hub.Subscriptions(c.ID()) >= a.cfg.MaxSubscriptions {
		return nil, "", errs.New(errs.RateLimited, "too_many_subscriptions", fmt.Sprintf("a connection may subscribe to at most %d channels", a.cfg.MaxSubscriptions))
	}
	claims := c.Claims()
	if exp := claims.Expiry(); !exp.IsZero() && time.Now().After(exp.Add(a.cfg.JWTLeeway)) {
		return nil, "", errs.New(errs.Unauthorized, "token_expired", "token expired; refresh it before subscribing")
	}
	if err := a.authorizer.Authorize(channels.Request{
		Claims: claims, Channel: ch, SocketID: c.ID(), Auth: req.Auth, ChannelData: req.ChannelData,
	}); err != nil {
		return nil, "", err
	}

	var secret string
	if ch.Kind == channels.PrivateEncrypted {
		if a.cfg.EncryptionMasterKey == nil {
			return nil, "", errs.New(errs.Internal, "encryption_not_configured", "encrypted channels are not configured on this server (ENCRYPTION_MASTER_KEY)")
		}
		secret = encryption.SharedSecret(ch.Name, a.cfg.EncryptionMasterKey)
	}

	var member *hub.Member
	if ch.Kind == channels.Presence {
		member = &hub.Member{UserID: claims.UserID(), Info: a.userInfo(c)}
		if req.Auth != "" {
			// The backend's signature vouches for channel_data: its user is the member.
			// Checked here again, not taken from whichever guard allowed the channel.
			pd, err := channels.VerifyAuth(a.cfg.AppKey, a.cfg.AppSecret, channels.Request{
				Channel: ch, SocketID: c.ID(), Auth: req.Auth, ChannelData: req.ChannelData,
			})
			if err != nil {
				return nil, "", err
			}
			member = &hub.Member{UserID: pd.UserID, Info: pd.UserInfo}
		}
	}
	ctx := context.Background()
	members, err := a.hub.Subscribe(ctx, c, ch.Name, member, a.cfg.PresenceMaxMembers)
	if errors.Is(err, hub.ErrFull) {
		return nil, "", errs.New(errs.RateLimited, "presence_full", fmt.Sprintf("presence channel is full (%d members)", a.cfg.PresenceMaxMembers))
	}
	if err != nil {
		return nil, "", fmt.Errorf("hub subscribe %s: %w", ch.Name, err)
	}
	if !already {
		a.subscriptionGauge(ch, 1)
		for _, r := range roomsFor(a.ext.Rooms, ch.Name) {
			if r.OnSubscribe != nil {
				r.OnSubscribe(ctx, RoomEvent{Channel: ch.Name, SocketID: c.ID(), UserID: c.UserID(), Claims: claims, Trigger: a.triggers})
			}
		}
	}
	if member == nil {
		return nil, secret, nil
	}
	p := &presenceInfo{Count: len(members), IDs: make([]string, len(members)), Hash: make(map[string]json.RawMessage, len(members))}
	for i, m := range members {
		p.IDs[i] = m.UserID
		p.Hash[m.UserID] = m.Info
	}
	return p, secret, nil
}

// userInfo is a presence member's public info, from the claims: the name, and the email
// only when PRESENCE_INCLUDE_EMAIL is set.
func (a *app) userInfo(c *socket.Conn) json.RawMessage {
	cl := c.Claims()
	info := map[string]string{"name": cl.Name}
	if a.cfg.PresenceIncludeEmail && cl.Email != "" {
		info["email"] = cl.Email
	}
	b, _ := json.Marshal(info)
	return b
}

func (a *app) onUnsubscribe(c *socket.Conn, _ string, args []json.RawMessage) any {
	a.metrics.MessagesIn.WithLabelValues("unsubscribe").Inc()
	var req subscribeRequest
	if err := decodeArg(args, &req); err != nil {
		e := a.socketError(err, "unsubscribe", c)
		return refusal(e)
	}
	if a.hub.Subscribed(c.ID(), req.Channel) {
		a.leave(c, req.Channel)
	}
	return map[string]any{"ok": true, "channel": req.Channel}
}

func (a *app) leave(c *socket.Conn, channel string) {
	ctx := context.Background()
	a.hub.Unsubscribe(ctx, c, channel)
	if hub.Internal(channel) {
		return
	}
	if ch, err := channels.Parse(channel); err == nil { // it was valid when subscribed
		a.subscriptionGauge(ch, -1)
	}
	for _, r := range roomsFor(a.ext.Rooms, channel) {
		if r.OnUnsubscribe != nil {
			r.OnUnsubscribe(ctx, RoomEvent{Channel: channel, SocketID: c.ID(), UserID: c.UserID(), Claims: c.Claims(), Trigger: a.triggers})
		}
	}
}

func (a *app) onClientEvent(c *socket.Conn, event string, args []json.RawMessage) any {
	a.metrics.MessagesIn.WithLabelValues("client_event").Inc()
	err := a.clientEvent(c, event, args)
	if errors.Is(err, ErrDrop) {
		a.metrics.ClientEventsDropped.WithLabelValues("room_handler").Inc()
		return map[string]any{"ok": true}
	}
	if err != nil {
		e := a.socketError(err, "client event", c)
		a.metrics.ClientEventsDropped.WithLabelValues(e.Code).Inc()
		c.Error(e.Code, e.Message)
		return refusal(e)
	}
	return map[string]any{"ok": true}
}

func (a *app) clientEvent(c *socket.Conn, event string, args []json.RawMessage) error {
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := decodeArg(args, &req); err != nil {
		return err
	}
	if len(event) > maxClientEventName {
		return errs.New(errs.Invalid, "invalid_event", fmt.Sprintf("event names are limited to %d characters", maxClientEventName))
	}
	ch, err := channels.Parse(req.Channel)
	if err != nil {
		return err
	}
	if !ch.ClientEventsAllowed() {
		return errs.New(errs.Forbidden, "client_events_forbidden", "client events are only allowed on private- and presence- channels")
	}
	if !a.hub.Subscribed(c.ID(), ch.Name) {
		return errs.New(errs.Forbidden, "not_subscribed", "subscribe to the channel before sending client events on it")
	}
	if len(req.Data) > a.cfg.MaxPayloadBytes {
		return errs.New(errs.TooLarge, "payload_too_large", fmt.Sprintf("client event data is limited to %d bytes", a.cfg.MaxPayloadBytes))
	}
	if !a.conns.get(c.ID()).clientEvents.Allow() {
		return errs.New(errs.RateLimited, "rate_limited", fmt.Sprintf("client events are limited to %d per second", a.cfg.ClientEventRate))
	}
	ev := &ClientEvent{Channel: ch.Name, Event: event, Data: req.Data, SocketID: c.ID(), UserID: c.UserID(), Claims: c.Claims(), Trigger: a.triggers}
	ctx := context.Background()
	for _, r := range roomsFor(a.ext.Rooms, ch.Name) {
		if r.OnClientEvent == nil {
			continue
		}
		if err := r.OnClientEvent(ctx, ev); err != nil {
			return err
		}
	}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return fmt.Errorf("room handler for %s left invalid JSON in the event data", ch.Name)
	}
	if err := a.hub.Publish(ctx, hub.Message{Channel: ch.Name, Event: event, Data: ev.Data, UserID: c.UserID(), ExceptSocketID: c.ID()}); err != nil {
		return err
	}
	a.metrics.Published.WithLabelValues("client").Inc()
	a.clientEventWebhook(ev)
	return nil
}

// decodeArg decodes the first event argument, which must be a JSON object, into v.
// refusal is the ack of a refused socket request: {ok:false, status, code, error}.
func refusal(e *errs.Error) map[string]any {
	return map[string]any{"ok": false, "status": e.Kind.Status(), "code": e.Code, "error": e.Message}
}

func decodeArg(args []json.RawMessage, v any) error {
	if len(args) == 0 || len(args[0]) == 0 || args[0][0] != '{' {
		return errs.New(errs.Invalid, "invalid_payload", "the payload must be a JSON object")
	}
	if err := json.Unmarshal(args[0], v); err != nil {
		return errs.New(errs.Invalid, "invalid_payload", "the payload has a field of the wrong type")
	}
	return nil
}

// socketError maps any error to the *errs.Error a client sees; internal details are
// logged, never sent.
func (a *app) socketError(err error, op string, c *socket.Conn) *errs.Error {
	var e *errs.Error
	if errors.As(err, &e) {
		if e.Kind == errs.Internal {
			a.log.Error(op+" failed", "socket_id", c.ID(), "user_id", c.UserID(), "code", e.Code, "err", err)
		}
		return e
	}
	a.log.Error(op+" failed", "socket_id", c.ID(), "user_id", c.UserID(), "err", err)
	return errs.New(errs.Internal, "internal_error", "internal server error")
}
