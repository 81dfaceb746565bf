// Package socket is Jetsocket's socket.io layer.
//
// go-socket.io provides the Engine.IO server underneath: transports, sessions, pings and
// the polling-to-websocket upgrade. Its socket.io layer is not used: it emits while
// holding namespace locks, deadlocks on Emit inside OnConnect, reports OnConnect errors
// to nobody, has no catch-all for event names (client-* events are arbitrary) and reads
// frames of any size. This package speaks the socket.io packet protocol itself over the
// Engine.IO session, with bounded frames and rate-limited input. Reading parks one
// goroutine per connection and handles each packet on a short-lived one (readLoop); a
// sender writes to the websocket directly when it can, else a bounded queue is drained
// by a writer goroutine that runs only while the queue has frames (Conn). Which events
// exist and what they do is not this package's business: every event goes to
// Options.Handler (server/protocol's table).
package socket

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/eio3"
	"github.com/jetsocket/jetsocket/server/socket/eio4"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/server/wire"
	"github.com/jetsocket/jetsocket/tokens"
)

// Events the server emits on its own.
const (
	EventConnectionEstablished = "jetsocket:connection_established"
	EventError                 = "jetsocket:error"
)

// Error codes sent in jetsocket:error.
const (
	CodeBadPacket     = errs.CodeBadPacket
	CodeFrameTooLarge = errs.CodeFrameTooLarge
	CodeBinary        = errs.CodeBinaryNotSupported
	CodeRateLimited   = errs.CodeRateLimited
	CodeInternal      = errs.CodeInternal
)

// Close reasons, for logs and disconnect hooks.
const (
	ReasonClientGone    = "transport closed"
	ReasonClientClose   = "client disconnect"
	ReasonSlowConsumer  = "slow consumer"
	ReasonFrameTooLarge = "frame too large"
	ReasonFlood         = "flood"
	ReasonShutdown      = "server shutdown"
	ReasonAuth          = "authentication failed"
	ReasonInternal      = "internal error"
)

// maxDrainBytes is how much of an oversized frame is read and thrown away to keep the
// connection; beyond it the connection is closed instead.
const maxDrainBytes = 1 << 20

// Handler handles one event from a client, whatever its name. args are the event's
// arguments after the name, as raw JSON. When the client asked for an ack, the return
// value is sent as the ack's payload. Events of one connection are handled one at a
// time, in arrival order.
type Handler func(c *Conn, event string, args []json.RawMessage) (ack any)

// AckThen is a Handler's answer with work to do right after its ack is queued (or
// where it would be, when the client asked for none): a subscribe that recovers
// history sends the publications the client missed after the ack, not before.
type AckThen struct {
	Ack  any
	Then func()
}

// Options configures a Server. Authenticate is required.
type Options struct {
	// Authenticate returns the claims of a session's token: the handshake query's (the
	// HTTP middleware has already refused bad ones before the session existed; this runs
	// again on the accepted v3 session because go-socket.io has no race-free way to carry
	// the request's context into the connection), or a v5 CONNECT's.
	Authenticate func(token string) (*tokens.Claims, error)
	CheckOrigin  func(*http.Request) bool // websocket origin check

	PingInterval  time.Duration // default 25s, socket.io's pingInterval
	PingTimeout   time.Duration // default 20s, socket.io's pingTimeout (v3: see NewServer)
	SendQueue     int           // frames buffered per connection before it counts as a slow consumer; default 256
	MaxFrameBytes int           // largest socket.io packet accepted; default 64 KiB
	InboundRate   float64       // packets per second per connection; default 100
	InboundBurst  int           // default 200
	// MaxConnsPerIP bounds the sockets of one client address: v4 sessions before their
	// CONNECT and upgrades' websockets count too; 0: unlimited.
	MaxConnsPerIP int
	// ConnectTimeout closes a v4 session (socket.io-client 3.x/4.x) that has not sent an
	// accepted CONNECT by then; default 45s, as Node's connectTimeout.
	ConnectTimeout time.Duration
	// Admit, if set, may refuse a v4 client whose token came in its CONNECT packet
	// (connection limits); v3 clients and query tokens are admitted at the handshake,
	// before a session exists. An *errs.Error's code, status and message are sent back.
	Admit func(claims *tokens.Claims, ip string) error
	// OnAuthRefused, if set, is told why a CONNECT's token was refused.
	OnAuthRefused func(tokens.Reason)

	Logger *slog.Logger
	// Handler handles every event clients send; required.
	Handler      Handler
	OnConnect    func(*Conn)
	OnDisconnect func(c *Conn, reason string)

	// RecoveryWindow turns on socket.io 4.x connection state recovery for v5 clients
	// (recovery.go): how long a connection that dropped unexpectedly can be restored.
	// 0: off.
	RecoveryWindow time.Duration
	// OnRestore subscribes a restored connection (after OnConnect) to its channels again
	// from the positions its client has, and returns what sends the missed publications
	// (after the CONNECT reply). ok false: not every channel could be recovered; the
	// connection is then dropped (OnDisconnect) and its client gets a fresh session.
	OnRestore func(c *Conn, chans []Restored) (finish func(), ok bool)

	afterOpen func() // tests only: widens the v3 library's handshake race (eio3.Options.AfterOpen)
}

func (o *Options) defaults() {
	if o.PingInterval == 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.SendQueue == 0 {
		o.SendQueue = 256
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 64 << 10
	}
	if o.InboundRate == 0 {
		o.InboundRate = 100
	}
	if o.InboundBurst == 0 {
		o.InboundBurst = 200
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 45 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server accepts socket.io connections and dispatches their events.
type Server struct {
	opts Options
	v3   *eio3.Engine // Engine.IO v3: socket.io-client 2.x (go-socket.io, walled in)
	v4   *eio4.Server // Engine.IO v4: socket.io-client 3.x and 4.x
	log  *slog.Logger

	ips     *ipSockets      // sockets per client address (limits.go)
	workers *engine.Workers // read and handle for connections waiting on a small stack (serve)
	poller  *engine.Poller  // waits for idle websocket connections with no goroutine; nil where it cannot

	mu         sync.RWMutex
	closing    bool
	conns      map[string]*Conn     // by socket id
	sessions   map[string]*Conn     // by Engine.IO session id
	retained   map[string]*retained // dropped sessions that may be restored, by pid
	pids       map[string]*Conn     // live connections that may be restored, by pid
	handshakes sync.WaitGroup       // handshake requests in the engine
	serving    sync.WaitGroup       // connection goroutines
	acceptDone chan struct{}
}

// NewServer builds a Server; call Serve to accept connections.
func NewServer(opts Options) (*Server, error) {
	if opts.Authenticate == nil {
		return nil, errors.New("socket: Options.Authenticate is required")
	}
	if opts.Handler == nil {
		return nil, errors.New("socket: Options.Handler is required")
	}
	opts.defaults()
	recoverCallbacks(&opts)
	if opts.PingInterval < 0 || opts.PingTimeout < 0 {
		return nil, errors.New("socket: PingInterval and PingTimeout must be positive")
	}
	s := &Server{
		ips:        newIPSockets(opts.MaxConnsPerIP),
		workers:    engine.NewWorkers(),
		opts:       opts,
		log:        opts.Logger,
		conns:      make(map[string]*Conn),
		sessions:   make(map[string]*Conn),
		retained:   make(map[string]*retained),
		pids:       make(map[string]*Conn),
		acceptDone: make(chan struct{}),
	}
	var err error
	if s.poller, err = engine.NewPoller(s.workers); err != nil {
		s.log.Debug("connections wait on goroutines of their own", "err", err)
		s.poller = nil
	}
	s.v3, err = eio3.NewEngine(eio3.Options{
		PingInterval:  opts.PingInterval,
		PingTimeout:   opts.PingTimeout,
		CheckOrigin:   opts.CheckOrigin,
		MaxFrameBytes: opts.MaxFrameBytes,
		// A client upgrading sends a packet or two meanwhile; these leave room for a
		// burst and bound the rest.
		HandoffPackets: opts.InboundBurst,
		HandoffBytes:   handoffFrames * opts.MaxFrameBytes,
		Charge:         s.chargeInbound,
		IPs:            s.ips,
		Log:            opts.Logger,
		AfterOpen:      opts.afterOpen,
	})
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if s.v4, err = s.newEngine4(); err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	return s, nil
}

// recoverCallbacks wraps the callbacks a Server runs (the event handler and the connect
// and disconnect hooks, where a developer's code runs) so that a panic in one is logged
// with its stack and ends at most the event or the connection it was for, never the
// process. Wrapped once here, they are safe on both engines. The protocol recovers its
// own handlers first and answers with its refusal; this is the backstop.
func recoverCallbacks(o *Options) {
	log, handler, onConnect, onDisconnect := o.Logger, o.Handler, o.OnConnect, o.OnDisconnect
	o.Handler = func(c *Conn, event string, args []json.RawMessage) (ack any) {
		defer func() {
			if p := recover(); p != nil {
				logPanic(log, "socket event handler", c, p, "event", truncateName(event))
				c.Error(CodeInternal, "internal error")
				ack = map[string]any{"ok": false, "status": http.StatusInternalServerError, "code": CodeInternal, "error": "internal error"}
			}
		}()
		return handler(c, event, args)
	}
	if onConnect != nil {
		o.OnConnect = func(c *Conn) {
			defer func() {
				if p := recover(); p != nil {
					// The connection may be half set up: end it; OnDisconnect cleans up.
					logPanic(log, "connect hook", c, p)
					c.Error(CodeInternal, "internal error")
					c.CloseAfterFlush(ReasonInternal)
				}
			}()
			onConnect(c)
		}
	}
	if onDisconnect != nil {
		o.OnDisconnect = func(c *Conn, reason string) {
			defer func() {
				if p := recover(); p != nil {
					logPanic(log, "disconnect hook", c, p, "reason", reason)
				}
			}()
			onDisconnect(c, reason)
		}
	}
}

func logPanic(log *slog.Logger, what string, c *Conn, p any, fields ...any) {
	log.Error(what+" panicked", append([]any{"socket_id", c.ID(), "user_id", c.UserID(), "panic", fmt.Sprint(p), "stack", string(debug.Stack())}, fields...)...)
}

func truncateName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// handoffFrames is how many largest frames a session may have posted during its
// upgrade and not yet read.
const handoffFrames = 8

// chargeInbound counts n packets posted during sid's upgrade against its connection's
// inbound rate limit. A session with no connection yet (still authenticating) is bounded
// by the handoff's limits alone.
func (s *Server) chargeInbound(sid string, n int) bool {
	s.mu.RLock()
	c := s.sessions[sid]
	s.mu.RUnlock()
	return c == nil || c.inbound.AllowN(time.Now(), n)
}

// ServeHTTP serves the Engine.IO endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// JSONP polling (the "j" parameter) makes the library answer text/javascript that
	// calls a function named by the caller: a script of anyone's choosing served from
	// our origin, which defeats a CSP of 'self'. No client we support needs it.
	if query.Has(r.URL.RawQuery, "j") {
		errs.Write(w, errs.New(errs.Invalid, errs.CodeJSONPNotSupported, "JSONP polling is not supported; use XHR polling or websocket"))
		return
	}
	// EIO picks the engine: 3 (socket.io-client 2.x, go-socket.io) or 4 (3.x/4.x, eio4).
	// go-socket.io ignores the parameter, so any other version, or none, is refused here
	// (400, as engine.io), before it would be served as v3.
	eio := query.Get(r.URL.RawQuery, "EIO")
	if eio != "3" && eio != "4" {
		errs.Write(w, errs.New(errs.Invalid, errs.CodeUnsupportedProtocol, "Engine.IO protocol version must be 3 or 4"))
		return
	}
	if query.Get(r.URL.RawQuery, "sid") == "" {
		s.mu.RLock()
		if s.closing {
			s.mu.RUnlock()
			w.Header().Set("Retry-After", "1")
			errs.Write(w, errs.New(errs.Unavailable, errs.CodeShuttingDown, "server is shutting down"))
			return
		}
		s.handshakes.Add(1)
		s.mu.RUnlock()
		defer s.handshakes.Done()
	}
	if eio == "4" {
		s.v4.ServeHTTP(w, r)
		return
	}
	s.v3.ServeHTTP(w, r)
}

// Serve accepts the v3 engine's sessions until Shutdown (the v4 engine hands its own
// over as they open). It returns nil after Shutdown.
func (s *Server) Serve() error {
	defer close(s.acceptDone)
	for {
		sess, err := s.v3.Accept()
		if err != nil {
			return nil // only after the engine's Close
		}
		s.open(sess)
	}
}

// open takes a new session from either engine and starts its connection on a goroutine
// of its own; a session that opens during shutdown is closed.
func (s *Server) open(sess Session) {
	s.mu.RLock()
	closing := s.closing
	if !closing {
		s.serving.Add(1)
	}
	s.mu.RUnlock()
	if closing {
		_ = sess.Close()
		return
	}
	go s.start(sess)
}

// Count is the number of open connections.
func (s *Server) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// Shutdown refuses new handshakes, closes every connection and waits for their
// goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.Close(ReasonShutdown)
	}
	s.v4.Shutdown() // v4 sessions that have not sent CONNECT yet
	done := make(chan struct{})
	go func() {
		s.serving.Wait()
		s.handshakes.Wait()
		s.v3.Close()
		<-s.acceptDone
		s.serving.Wait() // sessions accepted during shutdown, closed at once
		if s.poller != nil {
			_ = s.poller.Close()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("socket shutdown: %w", ctx.Err())
	}
}

// start sets a session's connection up, whichever engine it came from, then hands it to
// a fresh goroutine for the rest of its life (see readLoop). What differs between the
// client generations comes from the session: a socket.io 4 client (2.x) was admitted at
// the handshake on its query token, verified once more here, and is sent CONNECT
// unasked; a socket.io 5 client (3.x/4.x) sends CONNECT, maybe with its token, and may
// restore a dropped session (recovery.go).
func (s *Server) start(sess Session) {
	claims, auth := s.authenticate(sess)
	if claims == nil {
		_ = sess.Close()
		s.serving.Done()
		return
	}
	c := s.restore(sess, claims, auth)
	if c == nil {
		c = s.newConn(sess, claims)
		if c.v5 && s.opts.RecoveryWindow > 0 {
			s.restorable(c, newPID())
		}
		if s.log.Enabled(context.Background(), slog.LevelInfo) { // its fields cost a connect allocations at LOG_LEVEL=warn
			s.log.Info("socket connected", "socket_id", c.id, "user_id", claims.UserID(), "ip", sess.ClientIP(), "transport", sess.Transport(), "protocol", sess.Protocol())
		}
		s.connectReply(c)
		// OnConnect runs before connection_established goes out (a frame may reach the
		// client within this call): a client that has it is already counted against
		// the limits and on its user's channel. A connection OnConnect refuses never
		// gets it.
		if s.opts.OnConnect != nil {
			s.opts.OnConnect(c)
		}
	}
	established, _ := wire.EncodeEvent(EventConnectionEstablished, map[string]string{"socket_id": c.id, "user_id": claims.UserID()})
	c.sendFrame(wire.NewFrame(established))
	if c.recovered && c.finish != nil {
		c.finish() // the missed publications, after the CONNECT reply
		c.finish = nil
	}
	if w, ok := c.sess.(idleWaiter); ok && s.watch(c, w) {
		return // no goroutine while the client is quiet
	}
	go s.run(c)
}

// authenticate returns the claims of a session's client, or nil (the client was told
// why, where its protocol can be).
func (s *Server) authenticate(sess Session) (*tokens.Claims, connectAuth) {
	if sess.Protocol() >= 5 {
		return s.awaitConnect(sess)
	}
	// Claims the HTTP layer verified an instant ago (Verified) are taken as they are: a
	// token that expires from now on (JWT_LEEWAY included) is the protocol's expiry
	// timer's, as for any connection.
	claims := sess.Verified()
	var err error
	if claims == nil {
		claims, err = s.opts.Authenticate(sess.Token())
	}
	if err != nil {
		// The middleware checked this token an instant ago; it can only have expired
		// in between. Tell the client; the caller closes.
		s.log.Warn("socket refused after handshake", "reason", string(tokens.ReasonOf(err)), "ip", sess.ClientIP())
		_ = sess.Send(wire.EncodeError("/", errs.CodeInvalidToken))
		return nil, connectAuth{}
	}
	return claims, connectAuth{}
}

// run reads the connection until it ends, then cleans up; or until a Poller waits for
// it, and then the worker that finds the end cleans up.
func (s *Server) run(c *Conn) {
	if reason, handed := s.serve(c); !handed {
		s.finish(c, reason)
	}
}

// finish ends the connection (end) and counts it out of serving: its last step.
func (s *Server) finish(c *Conn, reason string) {
	s.end(c, reason)
	s.serving.Done()
}

// serve reads the connection until it ends and returns why. This goroutine is the one
// an idle connection keeps, and every byte of stack it ever grows to stays for the life
// of the connection (the runtime shrinks a stack only when under a quarter of it is in
// use). So where it can, it keeps none: once the session is on a websocket a Poller can
// watch, it hands the connection over and returns (handed). Until then (v4 polling), or
// with no Poller, a v4 session waits here in small frames (WaitInput) and leaves reading
// and handling to the workers: the stack stays at 2 KiB. Elsewhere (TLS, a 2.x session
// until it upgrades) readLoop reads here, and the stack grows to 4 KiB.
// handed: a worker has finished the connection, or will.
func (s *Server) serve(c *Conn) (reason string, handed bool) {
	w, ok := c.sess.(idleWaiter)
	if !ok {
		return s.readLoop(c, nil)
	}
	for {
		if s.watch(c, w) {
			return "", true
		}
		if !w.WaitInput() {
			break
		}
		// The worker that finds the end also cleans up (end is deep too: run on a
		// worker, whose stack has grown already, it does not grow this one).
		var ended bool
		s.workers.Do(func() {
			if reason = s.readReady(c, w); reason != "" {
				s.finish(c, reason)
				ended = true
			}
		})
		if ended {
			return "", true
		}
	}
	return s.readLoop(c, w)
}

// watch hands c to the Poller if its session is on a websocket it can watch, with
// nothing to read: readable runs on a worker when the client sends. false: it did not.
func (s *Server) watch(c *Conn, w idleWaiter) bool {
	if s.poller == nil {
		return false
	}
	ws := w.IdleWebSocket()
	return ws != nil && ws.Watch(s.poller, func() { s.readable(c, w, ws) }) == nil
}

// readable reads and handles what the client of a watched connection sent, on a worker,
// then has the Poller wait again; or finishes the connection at its end.
func (s *Server) readable(c *Conn, w idleWaiter, ws *engine.WebSocket) {
	if reason := s.readReady(c, w); reason != "" {
		s.finish(c, reason)
		return
	}
	if !ws.Rearm() {
		go s.run(c) // closing (a goroutine finds the end), or the poller failed: wait as before
	}
}

// readReady reads and handles what the client sent, on a worker: one message (waiting
// for the rest of it if need be), then the ones already buffered. It returns why the
// connection ends, or "".
func (s *Server) readReady(c *Conn, w idleWaiter) string {
	for {
		binary, rc, err := w.NextReaderStep()
		if err != nil {
			return ReasonClientGone
		}
		if rc != nil {
			if reason, stop := s.readOne(c, binary, rc, false); stop {
				return reason
			}
		}
		if !w.Ready() {
			return ""
		}
	}
}

// end closes the connection and cleans up after it.
func (s *Server) end(c *Conn, reason string) {
	c.Close(reason)
	c.waitWriter()
	reason = c.closeReason()

	log := c.takeLog() // before OnDisconnect leaves the channels it tracks
	s.forget(c)
	if s.opts.OnDisconnect != nil {
		s.opts.OnDisconnect(c, reason)
	}
	// Only once the connection is gone from every channel: a restore under the same
	// socket id must not race its leaving.
	s.retain(c, reason, log)
	if c.ended != nil {
		close(c.ended)
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("socket disconnected", "socket_id", c.id, "user_id", c.UserID(), "reason", reason, "duration", time.Since(c.connectedAt).Round(time.Millisecond).String())
	}
}

// forget removes c from the server's connections.
func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	if s.sessions[c.sess.ID()] == c {
		delete(s.sessions, c.sess.ID())
	}
	if c.pid != "" && s.pids[c.pid] == c {
		delete(s.pids, c.pid)
	}
}

func (s *Server) newConn(sess Session, claims *tokens.Claims) *Conn {
	return s.newConnID(sess, claims, "")
}

// newConnID is newConn with the socket id of a restored session (id), or a new one ("").
func (s *Server) newConnID(sess Session, claims *tokens.Claims, id string) *Conn {
	c := &Conn{
		srv:         s,
		sess:        sess,
		v5:          sess.Protocol() == 5,
		connectedAt: time.Now(),
		inbound:     rate.NewLimiter(rate.Limit(s.opts.InboundRate), s.opts.InboundBurst),
	}
	c.claims.Store(claims)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c.id = id; c.id == ""; {
		c.id = newSocketID()
		if _, taken := s.conns[c.id]; taken {
			c.id = ""
		}
	}
	s.conns[c.id] = c
	s.sessions[sess.ID()] = c
	return c
}

// readLoop reads packets and dispatches them one at a time, in order, on the
// connection's goroutine, parked in a read between them (serve says when). It does
// nothing deep itself: authentication and OnConnect ran on another goroutine, and each
// packet is decoded and handled on a short-lived one while this one waits. Between
// messages (a ping the engine answered) it hands the connection to the poller when it
// now can (w: a 2.x session once it upgraded to a websocket), and returns handed.
func (s *Server) readLoop(c *Conn, w idleWaiter) (reason string, handed bool) {
	for {
		binary, rc, err := c.sess.NextReader()
		if err != nil {
			return ReasonClientGone, false
		}
		if rc == nil {
			if w != nil && s.watch(c, w) {
				return "", true
			}
			continue
		}
		if reason, stop := s.readOne(c, binary, rc, true); stop {
			return reason, false
		}
	}
}

// readOne reads one message from rc and handles it: on a goroutine of its own when
// handOff (see readLoop), else here. stop: the connection ends, for reason.
func (s *Server) readOne(c *Conn, binary bool, rc io.ReadCloser, handOff bool) (reason string, stop bool) {
	max := int64(s.opts.MaxFrameBytes)
	if binary {
		// Close reads the frame to its end; an error there (bad base64 in a polling
		// "b4" message) poisons the library's polling payload for good: end the session.
		if err := rc.Close(); err != nil {
			return ReasonClientGone, true
		}
		c.Error(CodeBinary, "binary packets are not supported")
		return "", false
	}
	frame, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		_ = rc.Close()
		return ReasonClientGone, true
	}
	if int64(len(frame)) > max {
		return s.oversized(c, rc)
	}
	if err := rc.Close(); err != nil {
		return ReasonClientGone, true
	}
	// A handed-off packet was counted when it was posted (chargeInbound).
	if !preCounted(rc) && !c.inbound.Allow() {
		if !lazyLimiter(&c.flood, rate.Limit(s.opts.InboundRate), 5*s.opts.InboundBurst).Allow() {
			c.Error(CodeRateLimited, "too many packets: disconnecting")
			c.CloseAfterFlush(ReasonFlood)
			return ReasonFlood, true
		}
		c.Error(CodeRateLimited, "too many packets: packet dropped")
		return "", false
	}
	var quit bool
	if handOff {
		quit = s.handleOff(c, frame)
	} else {
		quit = s.handle(c, frame)
	}
	if quit {
		return ReasonClientClose, true
	}
	return "", false
}

// oversized answers a message over MaxFrameBytes, read that far from rc. A moderately
// oversized one is read to its end and dropped, so the connection survives and the
// client sees the error; a huge one is not drained: the client is told, then closed.
func (s *Server) oversized(c *Conn, rc io.ReadCloser) (reason string, stop bool) {
	msg := fmt.Sprintf("packets are limited to %d bytes", s.opts.MaxFrameBytes)
	if n, _ := io.CopyN(io.Discard, rc, maxDrainBytes); n < maxDrainBytes {
		if err := rc.Close(); err != nil {
			return ReasonClientGone, true
		}
		c.Error(CodeFrameTooLarge, msg+": packet dropped")
		return "", false
	}
	c.Error(CodeFrameTooLarge, msg)
	// No more is read: the close may linger, so the client gets the error before the
	// end of the stream instead of a reset that drops it.
	c.mu.Lock()
	ws := c.websocket()
	c.mu.Unlock()
	if ws != nil {
		ws.LingerOnClose()
	}
	c.CloseAfterFlush(ReasonFrameTooLarge)
	_ = rc.Close() // returns once the writer has closed the session
	return ReasonFrameTooLarge, true
}

// handleOff decodes and dispatches frame on a goroutine of its own and waits for it.
func (s *Server) handleOff(c *Conn, frame []byte) (stop bool) {
	done := make(chan bool, 1)
	go func() { done <- s.handle(c, frame) }()
	return <-done
}

func (s *Server) handle(c *Conn, frame []byte) (stop bool) {
	p, err := wire.DecodePacket(frame)
	if err != nil {
		c.Error(CodeBadPacket, "malformed socket.io packet: "+err.Error())
		return false
	}
	return s.dispatch(c, p)
}

func (s *Server) dispatch(c *Conn, p wire.Packet) (stop bool) {
	switch p.Type {
	case wire.PacketEvent:
		if p.Namespace != "/" {
			c.sendFrame(wire.NewFrame(c.namespaceError(p.Namespace)))
			return false
		}
		ack := s.opts.Handler(c, p.Event, p.Args)
		var then func()
		if a, ok := ack.(AckThen); ok {
			ack, then = a.Ack, a.Then
		}
		if p.ID != wire.NoAck {
			c.ack(p.ID, ack)
		}
		if then != nil {
			then()
		}
	case wire.PacketDisconnect:
		return p.Namespace == "/"
	case wire.PacketConnect:
		if p.Namespace != "/" {
			c.sendFrame(wire.NewFrame(c.namespaceError(p.Namespace)))
		}
	case wire.PacketBinaryEvent, wire.PacketBinaryAck:
		c.Error(CodeBinary, "binary packets are not supported")
	case wire.PacketAck, wire.PacketError:
		// The server never asks clients for acks; stray ones are ignored.
	}
	return false
}

// newSocketID returns an id in Pusher's form <digits>.<digits>: Pusher's server SDKs
// refuse any other form when a trigger passes it to exclude the sender. Random, so ids
// do not repeat across nodes and restarts (the server also checks its own).
func newSocketID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	hi := binary.BigEndian.Uint64(b[:8])%999_999_999 + 1
	lo := binary.BigEndian.Uint64(b[8:])%999_999_999 + 1
	return strconv.FormatUint(hi, 10) + "." + strconv.FormatUint(lo, 10)
}

// namespaceError refuses a namespace other than "/" in the client's protocol generation.
func (c *Conn) namespaceError(namespace string) []byte {
	if c.v5 {
		return wire.EncodeConnectError(namespace, "Invalid namespace", nil)
	}
	return wire.EncodeError(namespace, "Invalid namespace")
}
