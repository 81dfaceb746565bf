package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/connstate"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// maxEpoch bounds since.epoch: epochs are 11 characters; a longer one is not ours.
const maxEpoch = 64

// subscribeReq is the payload of jetsocket:subscribe and jetsocket:unsubscribe.
type subscribeReq struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth,omitempty"`
	ChannelData string `json:"channel_data,omitempty"`
	// Since is the position of the last publication the client saw on the channel:
	// the subscribe recovers what came after it (PRODUCT.md §14).
	Since *history.Position `json:"since,omitempty"`
}

func (r subscribeReq) channelName() string { return r.Channel }

// presenceInfo is the presence part of a subscribe answer.
type presenceInfo struct {
	Count int                        `json:"count"`
	IDs   []string                   `json:"ids"`
	Hash  map[string]json.RawMessage `json:"hash"`
}

// subscribed is both the ack and the subscription_succeeded payload.
type subscribed struct {
	OK           bool          `json:"ok"`
	Channel      string        `json:"channel"`
	Presence     *presenceInfo `json:"presence,omitempty"`
	SharedSecret string        `json:"shared_secret,omitempty"`
	// Position is the channel's latest position, when it keeps history.
	Position *history.Position `json:"position,omitempty"`
	// Recovered answers a subscribe with since: true when every publication after it
	// follows the ack.
	Recovered *bool `json:"recovered,omitempty"`
}

// subscriptionError is the jetsocket:subscription_error payload.
type subscriptionError struct {
	Channel string `json:"channel"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Error   string `json:"error"`
}

func errInternalChannel(verb string) error {
	return errs.New(errs.Forbidden, CodeInternalChannel, "internal channels (names starting with #) cannot be "+verb+" by clients")
}

func (s *Service) onSubscribe(r Request[subscribeReq]) (any, error) {
	c := r.conn
	p, secret, rec, err := s.subscribe(r.Ctx, c, r.Payload)
	if err != nil {
		return nil, err
	}
	res := subscribed{OK: true, Channel: r.Payload.Channel, Presence: p, SharedSecret: secret}
	if rec.History {
		res.Position = &rec.Position
	}
	if rec.Asked {
		res.Recovered = &rec.Recovered
		s.metrics.Recoveries.WithLabelValues(strconv.FormatBool(rec.Recovered)).Inc()
	}
	track(c, r.Payload, rec)
	c.Emit(EventSubscriptionSucceeded, res)
	if rec.Asked {
		// The missed publications follow the ack (and subscription_succeeded). A cache
		// channel's last event is not added: the client recovers from its own position.
		return socket.AckThen{Ack: res, Then: rec.Finish}, nil
	}
	if ch, err := channels.Parse(r.Payload.Channel); err == nil && ch.Cache() {
		// A cache channel's last event (or cache_miss) follows the ack.
		return socket.AckThen{Ack: res, Then: func() { s.sendCached(c, ch.Name) }}, nil
	}
	return res, nil
}

// subscribeRefused counts a refused subscribe and emits it as subscription_error.
func subscribeRefused(s *Service, c Conn, r Refusal) {
	s.metrics.SubscribeRefused.WithLabelValues(r.Code).Inc()
	ch := ""
	if r.Channel != nil {
		ch = *r.Channel
	}
	c.Emit(EventSubscriptionError, subscriptionError{ch, r.Status, r.Code, r.Error})
}

func (s *Service) subscribe(ctx context.Context, c Conn, req subscribeReq) (*presenceInfo, string, *hub.Recovery, error) {
	return s.subscribeLimited(ctx, c, req, true)
}

// subscribeLimited is subscribe; limited false skips the subscribe rate limit (a
// restore subscribes a session's channels again, all at once).
func (s *Service) subscribeLimited(ctx context.Context, c Conn, req subscribeReq, limited bool) (*presenceInfo, string, *hub.Recovery, error) {
	if hub.Internal(req.Channel) {
		return nil, "", nil, errInternalChannel("subscribed")
	}
	ch, err := channels.Parse(req.Channel)
	if err != nil {
		return nil, "", nil, err
	}
	already := s.hub.Subscribed(c, ch.Name)
	st := c.ConnState()
	if limited && !st.AllowSubscribe(rate.Limit(s.cfg.SubscribeRate), 2*s.cfg.SubscribeRate) {
		return nil, "", nil, errs.New(errs.RateLimited, CodeRateLimited, "too many subscribe attempts; slow down")
	}
	if !already && s.hub.Subscriptions(c) >= s.cfg.MaxSubscriptions {
		return nil, "", nil, errs.New(errs.RateLimited, CodeTooManySubscriptions, fmt.Sprintf("a connection may subscribe to at most %d channels", s.cfg.MaxSubscriptions))
	}
	claims := c.Claims()
	if exp := claims.Expiry(); !exp.IsZero() && time.Now().After(exp.Add(s.cfg.JWTLeeway)) {
		return nil, "", nil, errs.New(errs.Unauthorized, CodeTokenExpired, "token expired; refresh it before subscribing")
	}
	if err := s.authorize(c, channels.Request{
		Claims: claims, Channel: ch, SocketID: c.ID(), Auth: req.Auth, ChannelData: req.ChannelData,
	}); err != nil {
		return nil, "", nil, err
	}

	var secret string
	if ch.Kind == channels.PrivateEncrypted {
		if s.cfg.EncryptionMasterKey == nil {
			return nil, "", nil, errs.New(errs.Internal, CodeEncryptionNotConfigured, "encrypted channels are not configured on this server (ENCRYPTION_MASTER_KEY)")
		}
		secret = encryption.SharedSecret(ch.Name, s.cfg.EncryptionMasterKey)
	}

	var member *hub.Member
	if ch.Kind == channels.Presence {
		member = &hub.Member{UserID: claims.UserID(), Info: s.userInfo(c)}
		if req.Auth != "" {
			// The backend's signature vouches for channel_data: its user is the member.
			// Checked here again, not taken from whichever guard allowed the channel.
			pd, err := channels.VerifyAuth(s.cfg.AppKey, s.cfg.AppSecret, channels.Request{
				Channel: ch, SocketID: c.ID(), Auth: req.Auth, ChannelData: req.ChannelData,
			})
			if err != nil {
				return nil, "", nil, err
			}
			member = &hub.Member{UserID: pd.UserID, Info: pd.UserInfo}
		}
	}
	sctx, cancel := settle(ctx)
	defer cancel()
	if req.Since != nil && len(req.Since.Epoch) > maxEpoch {
		return nil, "", nil, errs.New(errs.Invalid, CodeInvalidPayload, fmt.Sprintf("since.epoch is at most %d characters", maxEpoch))
	}
	members, rec, err := s.hub.SubscribeSince(sctx, c, ch.Name, member, s.cfg.PresenceMaxMembers, req.Since)
	if errors.Is(err, hub.ErrFull) {
		return nil, "", nil, errs.New(errs.RateLimited, CodePresenceFull, fmt.Sprintf("presence channel is full (%d members)", s.cfg.PresenceMaxMembers))
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("hub subscribe %s: %w", ch.Name, err)
	}
	if req.Auth != "" {
		st.SetGrant(ch.Name, connstate.Grant{Auth: req.Auth, ChannelData: req.ChannelData})
	} else {
		st.RevokeGrant(ch.Name)
	}
	if !already {
		s.metrics.Subscriptions.WithLabelValues(ch.Kind.String()).Inc()
		for _, h := range s.hooksFor(ch.Name) {
			if h.OnSubscribe == nil {
				continue
			}
			if err := s.safeHook("subscribe hook", ch.Name, c, func() error {
				h.OnSubscribe(ctx, s.subscription(c, ch.Name))
				return nil
			}); err != nil {
				// The client is told the subscribe failed (500): it must not stay
				// subscribed behind that answer.
				s.leave(ctx, c, ch.Name)
				return nil, "", nil, err
			}
		}
	}
	if member == nil {
		return nil, secret, rec, nil
	}
	p := &presenceInfo{Count: len(members), IDs: make([]string, len(members)), Hash: make(map[string]json.RawMessage, len(members))}
	for i, m := range members {
		p.IDs[i] = m.UserID
		p.Hash[m.UserID] = m.Info
	}
	return p, secret, rec, nil
}

func (s *Service) subscription(c Conn, channel string) Subscription {
	return Subscription{Channel: channel, SocketID: c.ID(), UserID: c.UserID(), Claims: c.Claims(), Trigger: s.triggers, Channels: s.hub}
}

// userInfo is a presence member's public info, from the claims: the name, and the email
// only when PRESENCE_INCLUDE_EMAIL is set.
func (s *Service) userInfo(c Conn) json.RawMessage {
	cl := c.Claims()
	info := map[string]string{"name": cl.Name}
	if s.cfg.PresenceIncludeEmail && cl.Email != "" {
		info["email"] = cl.Email
	}
	b, _ := json.Marshal(info)
	return b
}

// onUnsubscribe leaves a channel; unsubscribing from a channel never subscribed is
// harmless. Internal channels are refused: a client must not opt out of sendToUser or
// terminate_connections.
func (s *Service) onUnsubscribe(r Request[subscribeReq]) (any, error) {
	if hub.Internal(r.Payload.Channel) {
		return nil, errInternalChannel("unsubscribed")
	}
	if s.hub.Subscribed(r.conn, r.Payload.Channel) {
		if err := s.leave(r.Ctx, r.conn, r.Payload.Channel); err != nil {
			return nil, err // a hook panicked: 500, though the channel is left all the same
		}
	}
	return map[string]any{"ok": true, "channel": r.Payload.Channel}, nil
}

// authorize runs the guards and the channel rules; a guard that panics denies (as an
// internal error), logged with its stack.
func (s *Service) authorize(c Conn, r channels.Request) error {
	return s.safeHook("channel guard", r.Channel.Name, c, func() error { return s.authorizer.Authorize(r) })
}

// leave takes c off channel and runs the unsubscribe hooks. Leaving cannot fail: a hook
// that panics is logged, the others still run, and its panic is returned.
func (s *Service) leave(ctx context.Context, c Conn, channel string) error {
	sctx, cancel := settle(ctx)
	defer cancel()
	s.hub.Unsubscribe(sctx, c, channel)
	if hub.Internal(channel) {
		return nil
	}
	if t, ok := c.(tracker); ok {
		t.Untrack(channel)
	}
	c.ConnState().RevokeGrant(channel)
	if ch, err := channels.Parse(channel); err == nil { // it was valid when subscribed
		s.metrics.Subscriptions.WithLabelValues(ch.Kind.String()).Dec()
	}
	var failed error
	for _, h := range s.hooksFor(channel) {
		if h.OnUnsubscribe == nil {
			continue
		}
		if err := s.safeHook("unsubscribe hook", channel, c, func() error {
			h.OnUnsubscribe(ctx, s.subscription(c, channel))
			return nil
		}); err != nil && failed == nil {
			failed = err
		}
	}
	return failed
}

// recheck runs every subscription of c past the authorizer again with c's current
// claims (after a refresh); the ones no longer allowed end with subscription_error.
func (s *Service) recheck(ctx context.Context, c Conn) {
	claims := c.Claims()
	st := c.ConnState()
	for _, name := range s.hub.ChannelsOf(c) {
		if hub.Internal(name) {
			continue
		}
		ch, err := channels.Parse(name)
		if err != nil {
			continue
		}
		grant, _ := st.GrantOf(name)
		err = s.authorize(c, channels.Request{
			Claims: claims, Channel: ch, SocketID: c.ID(), Auth: grant.Auth, ChannelData: grant.ChannelData,
		})
		if err == nil {
			continue
		}
		e := errs.From(err)
		s.log.Info("subscription ended by a refreshed token", "socket_id", c.ID(), "user_id", c.UserID(), "channel", name, "code", e.Code)
		_ = s.leave(ctx, c, name) // a hook's panic is logged by leave
		c.Emit(EventSubscriptionError, subscriptionError{name, e.Kind.Status(), e.Code, e.Message})
	}
}

// clientEventReq is the payload of a client event.
type clientEventReq struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (r clientEventReq) channelName() string { return r.Channel }

func (s *Service) onClientEvent(r Request[clientEventReq]) (any, error) {
	pos, err := s.clientEvent(r)
	if errors.Is(err, ErrDrop) {
		s.metrics.ClientEventsDropped.WithLabelValues("channel_hook").Inc()
		return map[string]any{"ok": true}, nil
	}
	if err != nil {
		return nil, err
	}
	if pos.Offset != 0 {
		// The sender is not sent its own event: its position tells its client that
		// this offset is no gap.
		return map[string]any{"ok": true, "epoch": pos.Epoch, "offset": pos.Offset}, nil
	}
	return map[string]any{"ok": true}, nil
}

// clientEventRefused counts a refused client event and tells the sender with
// jetsocket:error, which clients without acks see too.
func clientEventRefused(s *Service, c Conn, r Refusal) {
	s.metrics.ClientEventsDropped.WithLabelValues(r.Code).Inc()
	c.Error(r.Code, r.Error)
}

// clientEvent relays a client event and returns the position it got (zero: none).
func (s *Service) clientEvent(r Request[clientEventReq]) (history.Position, error) {
	c, event, req := r.conn, r.Event, r.Payload
	if len(event) > MaxClientEventName {
		return history.Position{}, errs.New(errs.Invalid, CodeInvalidEvent, fmt.Sprintf("event names are limited to %d characters", MaxClientEventName))
	}
	ch, err := channels.Parse(req.Channel)
	if err != nil {
		return history.Position{}, err
	}
	if !ch.ClientEventsAllowed() {
		return history.Position{}, errs.New(errs.Forbidden, CodeClientEventsForbidden, "client events are only allowed on private- and presence- channels")
	}
	if !s.hub.Subscribed(c, ch.Name) {
		return history.Position{}, errs.New(errs.Forbidden, CodeNotSubscribed, "subscribe to the channel before sending client events on it")
	}
	if len(req.Data) > s.cfg.MaxPayloadBytes {
		return history.Position{}, errs.New(errs.TooLarge, CodePayloadTooLarge, fmt.Sprintf("client event data is limited to %d bytes", s.cfg.MaxPayloadBytes))
	}
	if !c.ConnState().AllowClientEvent(rate.Limit(s.cfg.ClientEventRate), s.cfg.ClientEventRate) {
		return history.Position{}, errs.New(errs.RateLimited, CodeRateLimited, fmt.Sprintf("client events are limited to %d per second", s.cfg.ClientEventRate))
	}
	ev := &ClientEvent{Channel: ch.Name, Event: event, Data: req.Data, SocketID: c.ID(), UserID: c.UserID(), Claims: r.Claims, Trigger: s.triggers, Channels: s.hub}
	for _, h := range s.hooksFor(ch.Name) {
		if h.OnClientEvent == nil {
			continue
		}
		if err := s.safeHook("client event hook", ch.Name, c, func() error { return h.OnClientEvent(r.Ctx, ev) }); err != nil {
			return history.Position{}, err
		}
	}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return history.Position{}, fmt.Errorf("channel hook for %s left invalid JSON in the event data", ch.Name)
	}
	pos, err := s.hub.PublishAt(r.Ctx, hub.Message{Channel: ch.Name, Event: event, Data: ev.Data, UserID: c.UserID(), ExceptSocketID: c.ID()})
	if err != nil {
		return history.Position{}, err
	}
	s.metrics.Published.WithLabelValues("client").Inc()
	s.webhooks(webhook.Event{
		Name: webhook.ClientEvent, Channel: ev.Channel, Event: ev.Event,
		Data: string(ev.Data), SocketID: ev.SocketID, UserID: ev.UserID,
	})
	return pos, nil
}
