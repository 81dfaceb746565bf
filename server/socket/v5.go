package socket

import (
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/socket/eio4"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/server/wire"
	"github.com/jetsocket/jetsocket/tokens"
)

// socket.io-client 3.x and 4.x speak Engine.IO v4 and socket.io protocol v5; they are
// served by our own engine (eio4, chosen on the figures in docs/engine-v4-evaluation.md)
// beside go-socket.io's v3 one, at the same path, chosen by the handshake's EIO
// parameter. Everything above the engine is shared: both engines' sessions are a
// Session, so readLoop, the send queue, direct websocket writes of the same prebuilt
// frames, the limits and the event table are one for both.
// What differs is the start: a v5 client sends CONNECT (with `auth`, which may carry its
// token) and the socket is set up only then (serve5).

// newEngine4 builds the Engine.IO v4 engine over the socket layer's websockets.
func (s *Server) newEngine4() (*eio4.Server, error) {
	o := s.opts
	return eio4.NewServer(eio4.Options{
		PingInterval: o.PingInterval,
		PingTimeout:  o.PingTimeout,
		MaxPayload:   handoffFrames * o.MaxFrameBytes,
		MaxQueued:    max(o.SendQueue, o.InboundBurst),
		Upgrade: func(w http.ResponseWriter, r *http.Request) (eio4.WebSocket, error) {
			c, err := engine.AcceptWebSocket(w, r, o.CheckOrigin)
			if err != nil {
				return nil, err
			}
			c.WriteTimeout = o.PingTimeout
			return c, nil
		},
		OnOpen: func(sess *eio4.Session) { s.open(sess) },
		Admit:  s.admitSocket,
		Refuse: errs.WriteStatus,
	})
}

// connectReply sends the CONNECT reply: to a socket.io 4 client a bare CONNECT, to a 5
// client {sid}, and pid when the session can be restored.
func (s *Server) connectReply(c *Conn) {
	if !c.v5 {
		bare, _ := wire.EncodeConnect(nil)
		c.sendFrame(wire.NewFrame(bare))
		return
	}
	ok, _ := wire.EncodeConnect(struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}{c.id, c.pid})
	c.sendFrame(wire.NewFrame(ok))
}

// restore restores the session a CONNECT names ({pid, offset} in its auth) if it is
// retained, belongs to the same user and every one of its channels can be recovered;
// else nil, and the client gets a fresh session (always for a socket.io 4 client: its
// auth is empty).
func (s *Server) restore(conn Session, claims *tokens.Claims, auth connectAuth) *Conn {
	if s.opts.RecoveryWindow <= 0 || s.opts.OnRestore == nil {
		return nil
	}
	// Only the same user's: a pid presented by another user restores nothing, and the
	// session stays for its own client.
	r := s.takeRetained(auth.PID, claims.UserID())
	if r == nil {
		r = s.takeOver(auth.PID, claims.UserID())
	}
	if r == nil {
		return nil
	}
	chans, ok := r.log.restore(auth.Offset)
	if !ok {
		s.log.Info("socket restore refused: the client's position is no longer known", "socket_id", r.id, "user_id", claims.UserID())
		return nil
	}
	c := s.newConnID(conn, claims, r.id)
	c.recovered = true
	s.restorable(c, r.pid)
	for _, ch := range chans {
		c.rlog.track(ch.Channel, ch.Request, ch.Positioned, ch.Epoch, ch.Offset)
	}
	if s.opts.OnConnect != nil {
		s.opts.OnConnect(c)
	}
	finish, ok := s.opts.OnRestore(c, chans)
	if !ok {
		// As socket.io: a session that cannot be restored whole is not restored. Undo
		// this one (its channels are left) without closing the Engine.IO session.
		s.log.Info("socket restore refused: a channel cannot be recovered", "socket_id", r.id, "user_id", claims.UserID())
		c.discard()
		s.forget(c)
		if s.opts.OnDisconnect != nil {
			s.opts.OnDisconnect(c, ReasonRecoveryFailed)
		}
		return nil
	}
	c.finish = finish
	s.log.Info("socket restored", "socket_id", c.id, "user_id", claims.UserID(), "ip", conn.ClientIP(), "channels", len(chans), "protocol", 5)
	s.connectReply(c)
	return c
}

// awaitConnect reads packets until the client's CONNECT to "/" is accepted, and returns
// its claims; nil when the session ends first or sends no acceptable CONNECT within
// ConnectTimeout. A refused CONNECT is answered with CONNECT_ERROR and the session stays
// open for another try, as Node's server does (the client may retry with a new token).
func (s *Server) awaitConnect(conn Session) (*tokens.Claims, connectAuth) {
	var expired atomic.Bool
	timer := time.AfterFunc(s.opts.ConnectTimeout, func() {
		expired.Store(true)
		s.log.Info("socket closed: no CONNECT in time", "ip", conn.ClientIP())
		_ = conn.Close()
	})
	defer timer.Stop()
	max := int64(s.opts.MaxFrameBytes)
	for budget := s.opts.InboundBurst; budget > 0; budget-- {
		binary, rc, err := conn.NextReader()
		if err != nil {
			return nil, connectAuth{}
		}
		frame, err := io.ReadAll(io.LimitReader(rc, max+1))
		_ = rc.Close()
		if err != nil || binary || int64(len(frame)) > max {
			return nil, connectAuth{} // nothing but a CONNECT is expected from a client not yet connected
		}
		p, err := wire.DecodePacket(frame)
		if err != nil {
			return nil, connectAuth{}
		}
		switch p.Type {
		case wire.PacketConnect:
			if p.Namespace != "/" {
				_ = conn.Send(wire.EncodeConnectError(p.Namespace, "Invalid namespace", nil))
				continue
			}
			if claims, auth := s.connect5(conn, p.Data); claims != nil {
				if expired.Load() { // the timer fired meanwhile
					return nil, connectAuth{}
				}
				return claims, auth
			}
		case wire.PacketDisconnect:
			return nil, connectAuth{}
		}
		// Anything else before CONNECT belongs to no socket: ignored, as Node does.
	}
	return nil, connectAuth{}
}

// connectAuth is a CONNECT's auth: the token, and the pid and offset socket.io-client
// adds when it reconnects a session that can be restored.
type connectAuth struct {
	Token  *string `json:"token"`
	PID    string  `json:"pid"`
	Offset string  `json:"offset"`
}

// connect5 checks a CONNECT's token (auth.token, else the query's) and the connection
// limits; it answers a refusal with CONNECT_ERROR and returns nil.
func (s *Server) connect5(conn Session, data []byte) (*tokens.Claims, connectAuth) {
	ip := conn.ClientIP()
	token := conn.Token()
	var auth connectAuth
	if len(data) > 0 {
		// The token, when given, takes the query's place: the same verifier reads it.
		// (A pid or offset of the wrong type is no restore, not a refusal.)
		if err := json.Unmarshal(data, &auth); err != nil {
			var token struct {
				Token *string `json:"token"`
			}
			_ = json.Unmarshal(data, &token)
			auth = connectAuth{Token: token.Token}
		}
		if auth.Token != nil {
			token = *auth.Token
		}
	}
	claims, err := s.opts.Authenticate(token)
	if err != nil {
		reason := tokens.ReasonOf(err)
		if s.opts.OnAuthRefused != nil {
			s.opts.OnAuthRefused(reason)
		}
		s.log.Warn("socket auth refused", "reason", string(reason), "ip", ip, "protocol", 5)
		_ = conn.Send(wire.EncodeConnectError("/", errs.CodeInvalidToken, map[string]any{"status": http.StatusUnauthorized, "reason": string(reason)}))
		return nil, connectAuth{}
	}
	if s.opts.Admit != nil {
		if err := s.opts.Admit(claims, ip); err != nil {
			e := errs.From(err)
			s.log.Warn("socket refused", "reason", e.Code, "user_id", claims.UserID(), "ip", ip, "protocol", 5)
			_ = conn.Send(wire.EncodeConnectError("/", e.Code, map[string]any{"status": e.Kind.Status(), "reason": e.Message}))
			return nil, connectAuth{}
		}
	}
	return claims, auth
}
