package pusherproto

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/limit"
	"github.com/jetsocket/jetsocket/server/metrics"
	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// Disconnect reasons (the jetsocket_disconnects_total label) of this endpoint's own.
const (
	ReasonClientGone    = "client gone"
	ReasonSlowConsumer  = "slow consumer"
	ReasonShutdown      = "server shutdown"
	ReasonPongTimeout   = "pong reply not received"
	ReasonClientEvRate  = "client events over the rate"
	ReasonSigninTimeout = "not signed in in time"
	ReasonFrameTooLarge = "frame too large"
)

// Protocol versions served: pusher-js sends 7; 5 and 6 differ from it in nothing this
// server sends.
const (
	minProtocol = 5
	maxProtocol = 7
)

// settleTimeout bounds a change to shared state made for a connection (a join or leave,
// in Redis with many nodes), which outlives the connection's own context.
const settleTimeout = 5 * time.Second

// Options are New's dependencies. Webhooks may be nil; IPConns is shared with the
// socket.io side so MAX_CONNECTIONS_PER_IP counts both.
type Options struct {
	Config  *config.Config
	Hub     *hub.Hub
	Metrics *metrics.Metrics
	IPConns *limit.Counter
	// UserConns counts open connections per user (here: signed-in ones), shared with
	// the socket.io side for MAX_CONNECTIONS_PER_USER; nil: the service's own.
	UserConns *limit.Counter
	Webhooks  func(webhook.Event)
	// CheckOrigin decides which browser origins may connect (ALLOWED_ORIGINS).
	CheckOrigin func(*http.Request) bool
	Log         *slog.Logger
	// SendQueue bounds a connection's unwritten messages (default 256).
	SendQueue int
}

// Service runs the Pusher endpoint of a node.
type Service struct {
	cfg       *config.Config
	hub       *hub.Hub
	metrics   *metrics.Metrics
	ipConns   *limit.Counter
	userConns *limit.Counter
	webhooks  func(webhook.Event)
	log       *slog.Logger
	sendQueue int
	upgrader  websocket.Upgrader
	workers   *engine.Workers // read and handle for connections waiting on a small stack
	poller    *engine.Poller  // waits for idle connections with no goroutine; nil where it cannot

	counts counts // subscription_count, coalesced

	mu      sync.Mutex
	conns   map[string]*Conn
	closing bool
	readers sync.WaitGroup
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		cfg: o.Config, hub: o.Hub, metrics: o.Metrics, ipConns: o.IPConns, userConns: o.UserConns,
		webhooks: o.Webhooks, log: o.Log, sendQueue: o.SendQueue,
		conns: make(map[string]*Conn),
	}
	if s.ipConns == nil {
		s.ipConns = limit.NewCounter()
	}
	if s.userConns == nil {
		s.userConns = limit.NewCounter()
	}
	if s.webhooks == nil {
		s.webhooks = func(webhook.Event) {}
	}
	if s.sendQueue <= 0 {
		s.sendQueue = 256
	}
	s.workers = engine.NewWorkers()
	if p, err := engine.NewPoller(s.workers); err == nil {
		s.poller = p
	} else if s.log != nil {
		s.log.Debug("pusher connections wait on goroutines of their own", "err", err)
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Small buffers: most connections are idle most of the time, and a pooled
		// write buffer is held only while a message is written.
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     o.CheckOrigin,
	}
	if s.upgrader.CheckOrigin == nil {
		s.upgrader.CheckOrigin = func(*http.Request) bool { return true }
	}
	return s
}

// readBuffer is gorilla's read buffer per connection (engine.Upgrade).
const readBuffer = 1024

// frameLimits are the soft limit (a bigger frame is answered with pusher:error and
// dropped) and the hard one (a bigger frame closes the connection, 1009): a client event
// carries at most MAX_PAYLOAD_BYTES of data plus its envelope.
func (s *Service) frameLimits() (soft, hard int64) {
	soft = int64(s.cfg.MaxPayloadBytes) + 4<<10
	return soft, 4 * soft
}

// Serve upgrades r to a Pusher connection for app key, from a client at ip. Refusals
// follow the protocol: the websocket opens, the client gets pusher:error with the code
// and the close carries it, which is what pusher-js acts on (4001 does not reconnect,
// 4100 backs off).
func (s *Service) Serve(w http.ResponseWriter, r *http.Request, key, ip string) {
	if !s.upgrader.CheckOrigin(r) {
		// Refused before the upgrade, as the socket.io endpoint and CORS refuse it.
		errs.Write(w, errs.New(errs.Forbidden, errs.CodeOriginNotAllowed, "origin "+truncate(r.Header.Get("Origin"), 100)+" is not allowed"))
		return
	}
	ws, rd, err := engine.Upgrade(&s.upgrader, w, r, nil, readBuffer)
	if err != nil {
		return // the upgrader answered the request
	}
	refuse := func(code int, msg string) {
		_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
		_ = ws.WriteMessage(websocket.TextMessage, errorMessage(code, msg))
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(time.Second))
		_ = ws.Close()
	}
	if key != s.cfg.AppKey {
		refuse(CloseUnknownApp, "App key "+truncate(key, 64)+" not in this cluster")
		return
	}
	if p, err := strconv.Atoi(query.Get(r.URL.RawQuery, "protocol")); err != nil || p < minProtocol || p > maxProtocol {
		refuse(CloseBadProtocol, fmt.Sprintf("unsupported protocol version; this server speaks %d to %d", minProtocol, maxProtocol))
		return
	}
	if !s.ipConns.Acquire(ip, s.cfg.MaxConnsPerIP) {
		s.metrics.ConnectionsRefused.WithLabelValues("per_ip").Inc()
		refuse(CloseOverCapacity, "this address has too many open connections")
		return
	}
	c := s.newConn(ws, rd, ip)
	if c == nil {
		s.ipConns.Release(ip)
		refuse(CloseShuttingDown, "server shutting down")
		return
	}
	s.greet(c)
	// The poller waits for the client, or a goroutine of the connection's own: either way
	// the handler returns, and net/http's buffers for the hijacked connection, the
	// router's context and the handler's stack are freed rather than held for the life
	// of every idle connection (Shutdown waits on s.readers).
	if s.watchClient(c) {
		return
	}
	go s.run(c)
}

// watchClient hands c to the poller, which runs readable on a worker when the client sends:
// an idle connection has no goroutine. false: it cannot (TLS, not Linux).
func (s *Service) watchClient(c *Conn) bool {
	return s.poller != nil && c.watcher.Watch(&c.rd, s.poller, func() { s.readable(c) }) == nil
}

// readable reads and handles what the client of a watched connection sent, on a worker,
// then has the poller wait again; or, at the connection's end, cleans up after it.
func (s *Service) readable(c *Conn) {
	if s.readReady(c) {
		s.disconnect(c)
		s.readers.Done()
		return
	}
	if !c.watcher.Rearm(&c.rd) {
		// Closing: a goroutine reads on to the client's close frame or its deadline
		// (closeWait), which the poller would not see.
		go s.run(c)
	}
}

// newConn registers a connection, or returns nil when the service is shutting down.
func (s *Service) newConn(ws *websocket.Conn, rd engine.Readiness, ip string) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		svc: s, ws: ws, rd: rd, ip: ip, ctx: ctx, cancel: cancel,
		clientEvents:  rate.NewLimiter(rate.Limit(s.cfg.ClientEventRate), s.cfg.ClientEventRate),
		subscribeRate: rate.NewLimiter(rate.Limit(s.cfg.SubscribeRate), 2*s.cfg.SubscribeRate),
		errNotice:     rate.NewLimiter(5, 10),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		cancel()
		return nil
	}
	for c.id == "" || s.conns[c.id] != nil {
		c.id = newSocketID()
	}
	s.conns[c.id] = c
	s.readers.Add(1)
	return c
}

// run reads until the connection ends, then cleans up.
func (s *Service) run(c *Conn) {
	defer s.readers.Done()
	if !s.read(c) {
		s.disconnect(c)
	}
}

// greet greets the client and arms the timers, on the handler's goroutine: the
// connection's own stays small (see read).
func (s *Service) greet(c *Conn) {
	s.metrics.Connections.Inc()
	s.metrics.ConnectionsTotal.Inc()
	_, hard := s.frameLimits()
	c.ws.SetReadLimit(hard)
	c.touch()
	c.send(encode(EventConnectionEstablished, "", map[string]any{
		"socket_id": c.id, "activity_timeout": int(s.cfg.Pusher.ActivityTimeout / time.Second),
	}))
	c.mu.Lock()
	c.activity = time.AfterFunc(s.cfg.Pusher.ActivityTimeout, c.checkActivity)
	if s.cfg.Pusher.RequireSignin {
		c.signin = time.AfterFunc(s.cfg.Pusher.SigninTimeout, func() {
			if c.UserID() == "" {
				c.closeWith(CloseUnauthorized, ReasonSigninTimeout, errorMessage(CloseUnauthorized, "sign in (pusher:signin) within "+s.cfg.Pusher.SigninTimeout.String()))
			}
		})
	}
	c.mu.Unlock()
}

// read handles the client's messages until the connection fails or closes. Where it
// can (engine.Readiness), this goroutine waits for the client in small frames and the
// workers read and handle: an idle connection keeps a 2 KiB stack, not the 8 KiB a
// read and its handling grow it to.
// disconnected: the worker that found the end also disconnected (deep too: run on a
// worker, whose stack has grown already, it does not grow this one at the last moment).
func (s *Service) read(c *Conn) (disconnected bool) {
	for {
		if err := c.rd.Wait(); errors.Is(err, engine.ErrNoWait) {
			break
		}
		var done bool
		s.workers.Do(func() {
			if done = s.readReady(c); done {
				s.disconnect(c)
			}
		})
		if done {
			return true
		}
	}
	for !s.readOne(c) {
	}
	return false
}

// readReady reads one message (waiting for the rest of it if need be), then the ones
// already buffered. done: the connection ended.
func (s *Service) readReady(c *Conn) (done bool) {
	for {
		if s.readOne(c) {
			return true
		}
		if !c.rd.Ready() {
			return false
		}
	}
}

// readOne reads and handles one message. done: the connection ended.
func (s *Service) readOne(c *Conn) (done bool) {
	soft, _ := s.frameLimits()
	typ, msg, err := c.ws.ReadMessage()
	if err != nil {
		reason := ReasonClientGone
		if errors.Is(err, websocket.ErrReadLimit) {
			// The library has sent the close (1009) itself.
			reason = ReasonFrameTooLarge
		}
		c.abort(reason)
		return true
	}
	c.touch()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return false // waiting for the client's close frame
	}
	s.metrics.MessagesIn.WithLabelValues("pusher").Inc()
	if typ != websocket.TextMessage {
		c.sendError(ErrBadMessage, "only text messages are understood")
		return false
	}
	if int64(len(msg)) > soft {
		c.sendError(ErrPayloadTooLarge, fmt.Sprintf("messages are limited to %d bytes", soft))
		return false
	}
	s.handle(c, msg)
	return false
}

// handle dispatches one message. A handler's panic is recovered and answered as a
// server error; the connection goes on.
func (s *Service) handle(c *Conn, msg []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("pusher handler panicked", "socket_id", c.id, "panic", p)
			c.sendError(ErrBadMessage, "internal server error")
		}
	}()
	var m inbound
	if err := json.Unmarshal(msg, &m); err != nil {
		c.sendError(ErrBadMessage, "message is not valid JSON")
		return
	}
	switch {
	case m.Event == EventPing:
		c.send(encode(EventPong, "", struct{}{}))
	case m.Event == EventPong:
		// Activity is all a pong is for; touch recorded it.
	case m.Event == EventSubscribe:
		s.onSubscribe(c, m)
	case m.Event == EventUnsubscribe:
		s.onUnsubscribe(c, m)
	case m.Event == EventSignin:
		s.onSignin(c, m)
	case strings.HasPrefix(m.Event, "client-"):
		s.onClientEvent(c, m)
	case m.Event == "":
		c.sendError(ErrBadMessage, "message has no event")
	default:
		c.sendError(ErrBadMessage, "unknown event "+strconv.Quote(truncate(m.Event, 64)))
	}
}

// disconnect leaves every channel of c and forgets it.
func (s *Service) disconnect(c *Conn) {
	c.mu.Lock()
	c.closing = true
	c.stopTimers()
	c.mu.Unlock()
	c.cancel()
	c.watcher.Shut()
	_ = c.ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	for _, ch := range s.hub.ChannelsOf(c) {
		s.leave(ctx, c, ch)
	}
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	s.ipConns.Release(c.ip)
	c.mu.Lock()
	counted, user := c.userCounted, c.user
	c.mu.Unlock()
	if counted {
		s.userConns.Release(user)
	}
	s.metrics.Connections.Dec()
	s.metrics.Disconnects.WithLabelValues(c.closeReason()).Inc()
}

// Count is the number of open Pusher connections.
func (s *Service) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown refuses new connections, closes every open one with 4200 (pusher-js
// reconnects at once, to another node behind the load balancer) and waits for them to
// end, or for ctx.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(CloseShuttingDown, ReasonShutdown, nil)
	}
	done := make(chan struct{})
	go func() {
		s.readers.Wait()
		if s.poller != nil {
			_ = s.poller.Close()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.abort(ReasonShutdown)
		}
		return fmt.Errorf("pusher endpoint shutdown: %w", ctx.Err())
	}
}

// newSocketID returns an id in Pusher's form <digits>.<digits>, random so that ids do
// not repeat across nodes and restarts.
func newSocketID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24)
	hi := binary.BigEndian.Uint64(b[:8])%999_999_999 + 1
	lo := binary.BigEndian.Uint64(b[8:])%999_999_999 + 1
	return strconv.FormatUint(hi, 10) + "." + strconv.FormatUint(lo, 10)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
