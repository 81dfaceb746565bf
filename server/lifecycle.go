package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/tokens"
)

// Socket events of the token lifetime.
const (
	eventTokenExpired = "jetsocket:token_expired"
	eventRefresh      = "jetsocket:refresh"
	eventSignin       = "jetsocket:signin"
)

// reasonTokenExpired closes a connection whose token expired without a refresh.
const reasonTokenExpired = "token expired"

// admit applies the connection limits at the handshake, before a session exists. The
// counts are the open connections; onConnect enforces them again, exactly.
func (a *app) admit(claims *tokens.Claims, r *http.Request) error {
	if a.cfg.MaxConnsPerUser > 0 && a.userConns.Count(claims.UserID()) >= a.cfg.MaxConnsPerUser {
		a.metrics.ConnectionsRefused.WithLabelValues("per_user").Inc()
		return errs.New(errs.RateLimited, "too_many_connections", "this user has too many open connections")
	}
	// The address the proxy named (TRUSTED_PROXIES), the one onConnect counts and the
	// logs name; not the TCP peer, which behind a proxy is the proxy.
	if a.cfg.MaxConnsPerIP > 0 && a.ipConns.Count(socket.ClientIP(r)) >= a.cfg.MaxConnsPerIP {
		a.metrics.ConnectionsRefused.WithLabelValues("per_ip").Inc()
		return errs.New(errs.RateLimited, "too_many_connections", "this address has too many open connections")
	}
	return nil
}

// onConnect counts c against the limits, puts it on its user's internal channel (which
// #server-to-user-<id> triggers and terminate_connections reach) and arms the token's
// expiry.
func (a *app) onConnect(c *socket.Conn) {
	st := a.conns.get(c.ID())
	st.userCounted = a.userConns.Acquire(c.UserID(), a.cfg.MaxConnsPerUser)
	st.ipCounted = a.ipConns.Acquire(c.IP(), a.cfg.MaxConnsPerIP)
	a.metrics.Connections.Inc()
	a.metrics.ConnectionsTotal.Inc()
	if !st.userCounted || !st.ipCounted {
		// Many handshakes raced past the check at once.
		c.Error("too_many_connections", "too many open connections")
		c.CloseAfterFlush("too many connections")
		return
	}
	if _, err := a.hub.Subscribe(context.Background(), c, hub.UserChannel(c.UserID()), nil, 0); err != nil {
		a.log.Error("user channel", "socket_id", c.ID(), "err", err)
	}
	a.armExpiry(c, st)
}

// onDisconnect leaves every channel of c and forgets its state.
func (a *app) onDisconnect(c *socket.Conn, reason string) {
	for _, ch := range a.hub.ChannelsOf(c.ID()) {
		a.leave(c, ch)
	}
	if st := a.conns.take(c.ID()); st != nil {
		st.stopExpiry()
		if st.userCounted {
			a.userConns.Release(c.UserID())
		}
		if st.ipCounted {
			a.ipConns.Release(c.IP())
		}
	}
	a.metrics.Connections.Dec()
	a.metrics.Disconnects.WithLabelValues(reason).Inc()
	if reason == socket.ReasonSlowConsumer {
		a.metrics.SlowConsumers.Inc()
	}
}

// armExpiry schedules the token's expiry: at exp the client gets jetsocket:token_expired
// and the connection closes, unless a refresh came first.
func (a *app) armExpiry(c *socket.Conn, st *connState) {
	exp := c.Claims().Expiry()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.expiry != nil {
		st.expiry.Stop()
	}
	// JWT_LEEWAY applies here as everywhere else a token's exp is checked.
	st.expiry = time.AfterFunc(time.Until(exp.Add(a.cfg.JWTLeeway)), func() { a.expire(c) })
}

func (a *app) expire(c *socket.Conn) {
	exp := c.Claims().Expiry()
	if time.Now().Before(exp.Add(a.cfg.JWTLeeway)) {
		return // refreshed meanwhile; the new timer handles it
	}
	a.metrics.TokenExpiries.Inc()
	a.log.Info("token expired", "socket_id", c.ID(), "user_id", c.UserID())
	c.Emit(eventTokenExpired, map[string]any{"expired_at": exp.UTC().Format(time.RFC3339)})
	c.CloseAfterFlush(reasonTokenExpired)
}

// onRefresh handles jetsocket:refresh {token}: a valid token for the same user replaces
// the connection's claims and moves its expiry.
func (a *app) onRefresh(c *socket.Conn, _ string, args []json.RawMessage) any {
	a.metrics.MessagesIn.WithLabelValues("refresh").Inc()
	var req struct {
		Token string `json:"token"`
	}
	fail := func(e *errs.Error, outcome string) any {
		a.metrics.TokenRefreshes.WithLabelValues(outcome).Inc()
		a.log.Warn("token refresh refused", "socket_id", c.ID(), "user_id", c.UserID(), "reason", outcome)
		return refusal(e)
	}
	if err := decodeArg(args, &req); err != nil {
		return fail(a.socketError(err, "refresh", c), "invalid_payload")
	}
	claims, err := a.tokens.Verify(req.Token)
	if err != nil {
		msg := "token invalid"
		if te, ok := err.(*tokens.Error); ok {
			msg = te.Message()
		}
		return fail(errs.New(errs.Unauthorized, "invalid_token", msg), string(tokens.ReasonOf(err)))
	}
	if claims.UserID() != c.UserID() {
		return fail(errs.New(errs.Forbidden, "forbidden", "the new token is for another user"), "other_user")
	}
	c.SetClaims(claims)
	a.armExpiry(c, a.conns.get(c.ID()))
	a.metrics.TokenRefreshes.WithLabelValues("ok").Inc()
	a.log.Info("token refreshed", "socket_id", c.ID(), "user_id", c.UserID())
	return map[string]any{"ok": true, "expires_at": claims.Expiry().UTC().Format(time.RFC3339)}
}

// onSignin handles jetsocket:signin {auth, user_data}, Pusher's user authentication: an
// app backend signed (authenticateUser) that this socket is the user in user_data. The
// connection then also gets what is sent to that user (#server-to-user-<id>, terminate)
// besides what is sent to its token's user. Signing in again replaces the previous one.
func (a *app) onSignin(c *socket.Conn, _ string, args []json.RawMessage) any {
	a.metrics.MessagesIn.WithLabelValues("signin").Inc()
	var req struct {
		Auth     string `json:"auth"`
		UserData string `json:"user_data"`
	}
	err := decodeArg(args, &req)
	var id string
	if err == nil {
		id, err = channels.VerifyUser(a.cfg.AppKey, a.cfg.AppSecret, c.ID(), req.Auth, req.UserData)
	}
	if err != nil {
		e := a.socketError(err, "signin", c)
		a.log.Warn("signin refused", "socket_id", c.ID(), "user_id", c.UserID(), "code", e.Code)
		return refusal(e)
	}
	st := a.conns.get(c.ID())
	st.mu.Lock()
	prev := st.signedIn
	st.signedIn = id
	st.mu.Unlock()
	ctx := context.Background()
	if prev != "" && prev != id && prev != c.UserID() {
		a.hub.Unsubscribe(ctx, c, hub.UserChannel(prev))
	}
	if _, err := a.hub.Subscribe(ctx, c, hub.UserChannel(id), nil, 0); err != nil {
		return refusal(a.socketError(err, "signin", c))
	}
	a.log.Info("signed in", "socket_id", c.ID(), "user_id", c.UserID(), "signed_in_as", id)
	return map[string]any{"ok": true, "user_id": id}
}
