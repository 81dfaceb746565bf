// Package protocol is Jetsocket's socket protocol: what each event a client sends does
// (subscribe, unsubscribe, client events, sign-in, refresh, ping, and a developer's own
// events), what a connection's life does (limits, its user's channel, token expiry), and
// the catalogue of event names, error codes and limits (catalog.go).
//
// Every event goes through one table (table.go): a handler gets a typed Request and
// returns a value or an error; counting, decoding, error mapping, logging and the ack's
// shape are done once, around it. Built-in events are registered through the same On a
// developer uses (builtins). The package knows connections only through Conn, so its
// logic is tested without a socket.
package protocol

import (
	"context"
	"log/slog"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/connstate"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/limit"
	"github.com/jetsocket/jetsocket/server/metrics"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/server/trigger"
	"github.com/jetsocket/jetsocket/server/webhook"
	"github.com/jetsocket/jetsocket/tokens"
)

// Conn is what the protocol needs of a connection (socket.Conn has it).
type Conn interface {
	hub.Conn
	Claims() *tokens.Claims
	SetClaims(*tokens.Claims)
	IP() string
	// Context is cancelled when the connection closes.
	Context() context.Context
	Emit(event string, payload any) bool
	// Error sends jetsocket:error {code, message}.
	Error(code, message string)
	CloseAfterFlush(reason string)
	// ConnState is the protocol's state of this connection, carried by the connection
	// (connstate says why): Connect begins it, Disconnect ends it, and every event is
	// taken under it. The same pointer for the connection's whole life.
	ConnState() *connstate.State
}

var (
	_ Conn    = (*socket.Conn)(nil)
	_ Trigger = (*trigger.Service)(nil)
	_ Queries = (*hub.Hub)(nil)
)

// Trigger publishes from Go code, in-process, as the HTTP API does.
type Trigger interface {
	// Trigger sends event with data (any JSON-encodable value) to channels, except to
	// exceptSocketID when not empty. On private-encrypted- channels the server encrypts.
	Trigger(ctx context.Context, channels []string, event string, data any, exceptSocketID string) error
	// TriggerToUser sends event to every connection of userID.
	TriggerToUser(ctx context.Context, userID, event string, data any) error
	// Terminate closes every connection of userID.
	Terminate(ctx context.Context, userID string) error
}

// Queries answer what the HTTP API's channel queries answer, across every node.
type Queries interface {
	// Channels lists the occupied channels whose names start with prefix, with their
	// subscription counts.
	Channels(ctx context.Context, prefix string) (map[string]int, error)
	// Subscribers is channel's subscription count.
	Subscribers(ctx context.Context, channel string) (int, error)
	// Members lists a presence channel's members, sorted by user id.
	Members(ctx context.Context, channel string) ([]hub.Member, error)
	// History is channel's recent history: its latest position and the publications q
	// selects, oldest first (hub.ErrNoHistory when the channel keeps none).
	History(ctx context.Context, channel string, q history.Query) (history.Result, error)
}

// Settings are the configuration values the protocol reads, and no more (the server
// fills them from config.Config): the app's credentials, the channel encryption key,
// the token leeway and the limits. Names are config.Config's.
type Settings struct {
	AppKey, AppSecret    string        // delegated authorization and sign-in signatures
	EncryptionMasterKey  []byte        // nil: encrypted channels are not configured
	JWTLeeway            time.Duration // clock skew allowed on a connection's exp
	SubscribeRate        int           // subscribe attempts per second per connection
	MaxSubscriptions     int           // channels per connection
	PresenceMaxMembers   int           // members per presence channel
	PresenceIncludeEmail bool          // put the email claim in presence user_info
	ClientEventRate      int           // client events per second per connection
	MaxPayloadBytes      int           // largest client event data
	MaxConnsPerUser      int           // open connections per user; 0: unlimited
	MaxConnsPerIP        int           // open connections per client address; 0: unlimited
	OnlineOnConnect      bool          // a connection makes its token's user online (watchlists)
}

// Options are New's dependencies. Webhooks may be nil.
type Options struct {
	Settings   Settings
	Hub        *hub.Hub
	Authorizer *channels.Authorizer
	Verifier   tokens.Verifier
	Triggers   Trigger
	Metrics    *metrics.Metrics
	Webhooks   func(webhook.Event)
	Log        *slog.Logger
	// Hooks see what happens on the channels their pattern matches.
	Hooks []ChannelHooks
	// Events are a developer's own events, beside the built-in ones.
	Events []Event
	// IPConns counts open connections per client address; shared with the Pusher
	// endpoint so MAX_CONNECTIONS_PER_IP counts both (nil: the service's own).
	IPConns *limit.Counter
	// UserConns counts open connections per user; shared with the Pusher endpoint (its
	// signed-in connections) so MAX_CONNECTIONS_PER_USER counts both (nil: its own).
	UserConns *limit.Counter
}

// Service runs the protocol for every connection of a node.
type Service struct {
	cfg        Settings
	hub        *hub.Hub
	authorizer *channels.Authorizer
	verifier   tokens.Verifier
	triggers   Trigger
	metrics    *metrics.Metrics
	webhooks   func(webhook.Event)
	log        *slog.Logger
	hooks      []ChannelHooks
	table      table
	userConns  *limit.Counter
	ipConns    *limit.Counter
}

// New returns a Service with the built-in events and o.Events in its table. A
// developer's event with a built-in's name, or twice the same name, is an error.
func New(o Options) (*Service, error) {
	s := &Service{
		cfg: o.Settings, hub: o.Hub, authorizer: o.Authorizer, verifier: o.Verifier,
		triggers: o.Triggers, metrics: o.Metrics, webhooks: o.Webhooks, log: o.Log,
		hooks:     o.Hooks,
		table:     table{exact: make(map[string]Event)},
		userConns: limit.NewCounter(),
		ipConns:   limit.NewCounter(),
	}
	if o.IPConns != nil {
		s.ipConns = o.IPConns
	}
	if o.UserConns != nil {
		s.userConns = o.UserConns
	}
	if s.webhooks == nil {
		s.webhooks = func(webhook.Event) {}
	}
	for _, e := range s.builtins() {
		if err := s.table.add(e); err != nil {
			return nil, err
		}
	}
	for _, e := range o.Events {
		if err := s.table.addCustom(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Admit applies the connection limits to a client of claims' user at ip before its
// connection exists: at the handshake (middleware.Handshake), or at a v4 client's CONNECT
// when its token came there. ip is the address the caller resolved (TRUSTED_PROXIES), the
// one Connect counts and the logs name; not the TCP peer, which behind a proxy is the
// proxy. The counts are the open connections; Connect enforces them again, exactly.
func (s *Service) Admit(claims *tokens.Claims, ip string) error {
	if s.cfg.MaxConnsPerUser > 0 && s.userConns.Count(claims.UserID()) >= s.cfg.MaxConnsPerUser {
		s.metrics.ConnectionsRefused.WithLabelValues("per_user").Inc()
		return errs.New(errs.RateLimited, CodeTooManyConnections, "this user has too many open connections")
	}
	if s.cfg.MaxConnsPerIP > 0 && s.ipConns.Count(ip) >= s.cfg.MaxConnsPerIP {
		s.metrics.ConnectionsRefused.WithLabelValues("per_ip").Inc()
		return errs.New(errs.RateLimited, CodeTooManyConnections, "this address has too many open connections")
	}
	return nil
}

// Connect counts c against the limits, puts it on its user's internal channel (which
// #server-to-user-<id> triggers and terminate_connections reach) and online channel
// (which watchlists follow) and arms the token's expiry. It begins c's state: once per
// connection, before any of its events is taken. A connection connected before, or
// disconnected already, is refused (and closed), never counted again.
func (s *Service) Connect(c Conn) {
	st := c.ConnState()
	if !st.Begin(func() { s.connect(c, st) }) {
		s.log.Error("connect refused: the connection has connected before or is gone", "socket_id", c.ID(), "user_id", c.UserID())
		c.CloseAfterFlush(ReasonConnectionClosed)
	}
}

// connect is Connect's work, with no event of c in flight.
func (s *Service) connect(c Conn, st *connstate.State) {
	st.UserCounted = s.userConns.Acquire(c.UserID(), s.cfg.MaxConnsPerUser)
	st.IPCounted = s.ipConns.Acquire(c.IP(), s.cfg.MaxConnsPerIP)
	s.metrics.Connections.Inc()
	s.metrics.ConnectionsTotal.Inc()
	if !st.UserCounted || !st.IPCounted {
		// Many handshakes raced past the check at once.
		c.Error(CodeTooManyConnections, "too many open connections")
		c.CloseAfterFlush("too many connections")
		return
	}
	ctx, cancel := settle(c.Context())
	defer cancel()
	if _, err := s.hub.Subscribe(ctx, c, hub.UserChannel(c.UserID()), nil, 0); err != nil {
		s.log.Error("user channel", "socket_id", c.ID(), "err", err)
	}
	// With ONLINE_ON_CONNECT every connection is authenticated, so its user is online
	// while it is open: watchlists on any node and either protocol follow this
	// channel's members. Joined always then, not only when someone watches: whether
	// anyone does is known only across every node, and a watcher reading the state
	// later must find it right. Off by default: it costs every connection about 1.1 KB
	// and a presence write on connect and disconnect (BENCHMARKS.md), for a feature
	// few apps use; sign-ins make their user online either way.
	if s.cfg.OnlineOnConnect {
		if err := s.hub.GoOnline(ctx, c, c.UserID()); err != nil {
			s.log.Error("online channel", "socket_id", c.ID(), "err", err)
		}
	}
	s.armExpiry(c, st)
}

// Disconnect ends c's state, leaves every channel of c and releases its limits: once,
// after its events in flight are done. An event after it is refused
// (CodeConnectionClosed); a second Disconnect, or one of a connection never connected,
// does nothing.
func (s *Service) Disconnect(c Conn, reason string) {
	st := c.ConnState()
	if !st.End() {
		return
	}
	st.StopExpiry()
	// The connection's context is cancelled by now, but leaving must still reach Redis.
	ctx, cancel := settle(c.Context())
	defer cancel()
	for _, ch := range s.hub.ChannelsOf(c) {
		_ = s.leave(ctx, c, ch) // a hook's panic is logged by leave; the rest still leaves
	}
	if st.UserCounted {
		s.userConns.Release(c.UserID())
	}
	if st.IPCounted {
		s.ipConns.Release(c.IP())
	}
	s.metrics.Connections.Dec()
	s.metrics.Disconnects.WithLabelValues(reason).Inc()
	if reason == socket.ReasonSlowConsumer {
		s.metrics.SlowConsumers.Inc()
	}
}

// armExpiry schedules the token's expiry: at exp the client gets jetsocket:token_expired
// and the connection closes, unless a refresh came first.
func (s *Service) armExpiry(c Conn, st *connstate.State) {
	exp := c.Claims().Expiry()
	// JWT_LEEWAY applies here as everywhere else a token's exp is checked.
	st.SetExpiry(time.AfterFunc(time.Until(exp.Add(s.cfg.JWTLeeway)), func() { s.expire(c) }))
}

func (s *Service) expire(c Conn) {
	exp := c.Claims().Expiry()
	if time.Now().Before(exp.Add(s.cfg.JWTLeeway)) {
		return // refreshed meanwhile; the new timer handles it
	}
	s.metrics.TokenExpiries.Inc()
	s.log.Info("token expired", "socket_id", c.ID(), "user_id", c.UserID())
	c.Emit(EventTokenExpired, map[string]any{"expired_at": exp.UTC().Format(time.RFC3339)})
	c.CloseAfterFlush(ReasonTokenExpired)
}

// withTimeout is context.WithTimeout(parent, d) for a connection's context. A parent
// that registers callbacks itself (socket.Conn's, see afterFuncer) is not asked for its
// Done channel, which context.WithTimeout would do: the channel would be made for it and
// kept by the connection for good, 112 B on every connection that handled an event.
func withTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	a, ok := parent.(afterFuncer)
	if !ok {
		return context.WithTimeout(parent, d)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), d)
	if parent.Err() != nil {
		cancel()
		return ctx, cancel
	}
	stop := a.AfterFunc(cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// afterFuncer is a context that runs callbacks when it ends, as socket.Conn's does.
type afterFuncer interface {
	AfterFunc(f func()) (stop func() bool)
}

// settle returns the context for a change to shared state made for a connection (a join
// or leave, in Redis with many nodes): it keeps ctx's values and is bounded by
// RequestTimeout, but is not cancelled when the connection closes, so that a change is
// not left half made (a member joined in Redis that this node does not know of, and so
// never removes). Reads and a handler's own work use the request's context, which is.
func settle(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), RequestTimeout)
}
