package protocol

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/tokens"
)

// builtins are the events every server has, registered through On as a developer's are.
func (s *Service) builtins() []Event {
	subscribe := On(EventSubscribe, s.onSubscribe)
	subscribe.kind, subscribe.refused = "subscribe", subscribeRefused
	unsubscribe := On(EventUnsubscribe, s.onUnsubscribe)
	unsubscribe.kind = "unsubscribe"
	refresh := On(EventRefresh, s.onRefresh)
	refresh.kind = "refresh"
	signin := On(EventSignin, s.onSignin)
	signin.kind = "signin"
	ping := On(EventPing, onPing)
	ping.kind = "ping"
	client := On(ClientEventPrefix, s.onClientEvent)
	client.kind, client.prefix, client.refused = "client_event", true, clientEventRefused
	return []Event{subscribe, unsubscribe, refresh, signin, ping, client}
}

// onPing answers at once: a cheap liveness and latency check for clients, and the probe
// the reliability tests use.
func onPing(Request[json.RawMessage]) (any, error) {
	return map[string]any{"pong": true, "time_ms": time.Now().UnixMilli()}, nil
}

type refreshReq struct {
	Token string `json:"token"`
}

// onRefresh handles jetsocket:refresh {token}: a valid token for the same user replaces
// the connection's claims and moves its expiry. Every subscription is then checked
// against the new claims; one no longer allowed ends with subscription_error.
func (s *Service) onRefresh(r Request[refreshReq]) (any, error) {
	c := r.conn
	fail := func(e *errs.Error, outcome string) (any, error) {
		s.metrics.TokenRefreshes.WithLabelValues(outcome).Inc()
		s.log.Warn("token refresh refused", "socket_id", c.ID(), "user_id", c.UserID(), "reason", outcome)
		return nil, e
	}
	claims, err := s.verifier.Verify(r.Payload.Token)
	if err != nil {
		msg := "token invalid"
		if te, ok := err.(*tokens.Error); ok {
			msg = te.Message()
		}
		return fail(errs.New(errs.Unauthorized, CodeInvalidToken, msg), string(tokens.ReasonOf(err)))
	}
	if claims.UserID() != c.UserID() {
		return fail(errs.New(errs.Forbidden, CodeForbidden, "the new token is for another user"), "other_user")
	}
	c.SetClaims(claims)
	s.armExpiry(c, c.ConnState())
	s.metrics.TokenRefreshes.WithLabelValues("ok").Inc()
	s.log.Info("token refreshed", "socket_id", c.ID(), "user_id", c.UserID())
	s.recheck(r.Ctx, c)
	s.updateMembers(r.Ctx, c)
	return map[string]any{"ok": true, "expires_at": claims.Expiry().UTC().Format(time.RFC3339)}, nil
}

// updateMembers gives c's presence memberships the user_info of its refreshed claims (a
// new name): new subscribers and the users API see it; those subscribed already are not
// told (hub.UpdateMember says why). A membership a backend's channel_data vouched for
// keeps that info.
func (s *Service) updateMembers(ctx context.Context, c Conn) {
	st := c.ConnState()
	m := hub.Member{UserID: c.UserID(), Info: s.userInfo(c)}
	sctx, cancel := settle(ctx)
	defer cancel()
	for _, name := range s.hub.ChannelsOf(c) {
		if ch, err := channels.Parse(name); err != nil || ch.Kind != channels.Presence {
			continue
		}
		if _, delegated := st.GrantOf(name); delegated {
			continue
		}
		if err := s.hub.UpdateMember(sctx, c, name, m); err != nil {
			s.log.Error("presence member update", "socket_id", c.ID(), "user_id", c.UserID(), "channel", name, "err", err)
		}
	}
}

type signinReq struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// onSignin handles jetsocket:signin {auth, user_data}, Pusher's user authentication: an
// app backend signed (authenticateUser) that this socket is the user in user_data. The
// connection then also gets what is sent to that user (#server-to-user-<id>, terminate)
// besides what is sent to its token's user. Signing in again replaces the previous one.
func (s *Service) onSignin(r Request[signinReq]) (any, error) {
	c := r.conn
	id, err := channels.VerifyUser(s.cfg.AppKey, s.cfg.AppSecret, c.ID(), r.Payload.Auth, r.Payload.UserData)
	if err != nil {
		s.log.Warn("signin refused", "socket_id", c.ID(), "user_id", c.UserID(), "code", errs.From(err).Code)
		return nil, err
	}
	prev := c.ConnState().SignIn(id)
	ctx, cancel := settle(r.Ctx)
	defer cancel()
	if prev != "" && prev != id && prev != c.UserID() {
		s.hub.Unsubscribe(ctx, c, hub.UserChannel(prev))
		s.hub.Unsubscribe(ctx, c, hub.OnlineChannel(prev))
	}
	if _, err := s.hub.Subscribe(ctx, c, hub.UserChannel(id), nil, 0); err != nil {
		return nil, err
	}
	// The signed-in user is online too while this connection is (its token's user is
	// from Connect on).
	if err := s.hub.GoOnline(ctx, c, id); err != nil {
		return nil, err
	}
	s.log.Info("signed in", "socket_id", c.ID(), "user_id", c.UserID(), "signed_in_as", id)
	res := map[string]any{"ok": true, "user_id": id}
	var u struct {
		Watchlist []string `json:"watchlist"`
	}
	if json.Unmarshal([]byte(r.Payload.UserData), &u) != nil || len(u.Watchlist) == 0 || prev != "" {
		return res, nil
	}
	events, err := s.hub.Watch(ctx, c, u.Watchlist)
	if err != nil {
		s.log.Error("watchlist", "socket_id", c.ID(), "user_id", c.UserID(), "err", err)
	}
	if len(events) == 0 {
		return res, nil
	}
	// The watched users' state now follows the ack; their changes come as they happen.
	return socket.AckThen{Ack: res, Then: func() {
		c.Emit(hub.EventWatchlist, map[string]any{"events": events})
	}}, nil
}
