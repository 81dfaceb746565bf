// Package server wires Jetsocket together: configuration, logging, the HTTP routes, the
// socket server, and their start and graceful stop.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/joho/godotenv"

	"github.com/jetsocket/jetsocket/middleware"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/cluster"
	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/limit"
	"github.com/jetsocket/jetsocket/server/metrics"
	"github.com/jetsocket/jetsocket/server/protocol"
	"github.com/jetsocket/jetsocket/server/pusherproto"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/server/trigger"
	"github.com/jetsocket/jetsocket/server/users"
	"github.com/jetsocket/jetsocket/server/webhook"
	"github.com/jetsocket/jetsocket/tokens"
)

// maxLoginLimiterKeys bounds the login limiter's memory (one bucket per client IP).
const maxLoginLimiterKeys = 100_000

// Run runs the server until ctx is cancelled, then shuts it down gracefully. args are the
// command-line arguments without the program name; getenv reads the environment (the
// .env file fills in what it lacks). Logs go to stdout.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return RunWith(ctx, Options{Args: args, Getenv: getenv, Stdout: stdout, Stderr: stderr})
}

// Options are RunWith's arguments.
type Options struct {
	Args           []string
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Ready, if set, receives the listening address once connections are accepted.
	Ready func(addr net.Addr)
	// Extensions are the developer's own events, guards, channel hooks and routes.
	Extensions
}

// RunWith is Run with extensions; see Options.
func RunWith(ctx context.Context, o Options) error {
	args, getenv, stdout, stderr, ready := o.Args, o.Getenv, o.Stdout, o.Stderr, o.Ready
	fl := flag.NewFlagSet("jetsocket", flag.ContinueOnError)
	fl.SetOutput(stderr)
	envFile := fl.String("env-file", ".env", "dotenv file to read when present; real environment variables win")
	if err := fl.Parse(args); err != nil {
		return err
	}
	// gin prints route tables and a debug banner to stdout in its default mode.
	gin.SetMode(gin.ReleaseMode)
	getenv, err := withDotenv(*envFile, getenv)
	if err != nil {
		return err
	}
	cfg, warnings, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	for _, w := range warnings {
		log.Warn(w)
	}

	app, err := newApp(cfg, log, o.Extensions)
	if err != nil {
		return err
	}
	if app.keys != nil {
		defer app.keys.Close()
	}

	handler, err := app.routes()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = app.sockets.Serve() }()
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopDebug()
	}

	serveErr := make(chan error, 1)
	go func() {
		var err error
		if cfg.TLSCertFile != "" {
			err = httpSrv.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			err = httpSrv.Serve(ln)
		}
		serveErr <- err
	}()
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	log.Info("jetsocket listening", "addr", ln.Addr().String(), "scheme", scheme, "env", cfg.Env)
	if ready != nil {
		ready(ln.Addr())
	}

	select {
	case err := <-serveErr:
		_ = app.sockets.Shutdown(context.Background())
		_ = app.pusher.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	if err := app.shutdown(cfg.ShutdownTimeout, httpSrv, serveErr); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// shutdown stops serving within timeout, in the order the parts depend on each other;
// serveErr is the HTTP server's Serve result.
func (a *app) shutdown(timeout time.Duration, httpSrv *http.Server, serveErr <-chan error) error {
	a.log.Info("shutting down", "timeout", timeout.String(), "connections", a.sockets.Count())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a.shuttingDown.Store(true)
	var errs []error
	// Close the sockets first: open long-polls are requests that http.Server.Shutdown
	// would otherwise wait for.
	if err := a.sockets.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	// Hijacked websockets, which http.Server.Shutdown does not see: closed with 4200.
	if err := a.pusher.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := httpSrv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	// After the sockets (their disconnects leave the shared presence and counts), before
	// the webhooks (what is still held is reaped now, which may be webhooks).
	if a.cluster != nil {
		if err := a.cluster.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
	}
	// After the sockets: their disconnects vacate channels, which are webhooks too.
	// What the budget leaves undelivered is logged and counted, not a failed shutdown.
	if a.webhooks != nil {
		a.webhooks.Close(sctx)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	return errors.Join(errs...)
}

// serveDebug serves net/http/pprof on its own loopback listener (DEBUG_ADDR), never on
// the public one: profiles expose memory contents.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("DEBUG_ADDR: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// EnvWithDotenv is the environment the server reads: getenv, falling back to the dotenv
// file at path (see withDotenv). The operator commands read it the same way.
func EnvWithDotenv(path string, getenv func(string) string) (func(string) string, error) {
	return withDotenv(path, getenv)
}

// withDotenv returns a getenv that falls back to the dotenv file's values. A missing
// file is fine; an unreadable or malformed one is an error.
func withDotenv(path string, getenv func(string) string) (func(string) string, error) {
	if path == "" {
		return getenv, nil
	}
	vals, err := godotenv.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return getenv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return vals[k]
	}, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app holds the wired dependencies that the routes use.
type app struct {
	cfg          *config.Config
	log          *slog.Logger
	tokens       *tokens.Manager
	keys         *tokens.KeySet // nil without JWKS_URL
	users        *users.Store
	loginLimiter *limit.Keyed
	sockets      *socket.Server
	hub          *hub.Hub
	triggers     *trigger.Service
	protocol     *protocol.Service
	pusher       *pusherproto.Service // the Pusher protocol endpoint, /app/{key}
	authorizer   *channels.Authorizer // the channel rules, for both endpoints and /pusher/auth
	metrics      *metrics.Metrics
	webhooks     *webhook.Sender // nil without WEBHOOK_URL
	cluster      *cluster.Group  // nil without REDIS_URL
	ext          Extensions
	origins      *middleware.Origins
	shuttingDown atomic.Bool
}

func newApp(cfg *config.Config, log *slog.Logger, ext Extensions) (_ *app, err error) {
	mx := metrics.New()
	keys, err := newKeySet(cfg, log, mx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && keys != nil {
			keys.Close()
		}
	}()
	secrets := cfg.JWTSecrets
	if len(secrets) == 0 { // a Config built by hand
		secrets = []tokens.Secret{{Key: cfg.JWTSecret}}
	}
	tm, err := tokens.NewManager(tokens.Config{
		Secrets: secrets, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		TTL: cfg.JWTTTL, Leeway: cfg.JWTLeeway, Keys: keys, Mapping: cfg.ClaimMapping,
	})
	if err != nil {
		return nil, err
	}
	var store *users.Store
	if cfg.UsersFile != "" {
		if store, err = users.LoadFile(cfg.UsersFile); err != nil {
			return nil, fmt.Errorf("config: USERS_FILE: %w", err)
		}
	} else {
		if store, err = users.NewStore(users.Demo); err != nil {
			return nil, err
		}
		log.Warn("USERS_FILE not set: the demo users alice, bob and carol can log in (development only)")
	}

	a := &app{
		cfg:          cfg,
		log:          log,
		tokens:       tm,
		keys:         keys,
		users:        store,
		loginLimiter: limit.NewKeyed(cfg.LoginRateLimit.N, cfg.LoginRateLimit.Per, maxLoginLimiterKeys),
		ext:          ext,
		metrics:      mx,
	}
	if len(cfg.WebhookURLs) > 0 {
		a.webhooks, err = webhook.New(webhook.Options{
			URLs: cfg.WebhookURLs, Key: cfg.AppKey, Secret: cfg.AppSecret, Logger: log,
			OnDelivery:  func(outcome string) { a.metrics.WebhookDeliveries.WithLabelValues(outcome).Inc() },
			OnQueueFull: a.metrics.WebhookQueueDrops.Inc,
		})
		if err != nil {
			return nil, err
		}
	}
	// One node keeps everything in memory; with REDIS_URL the hub's messages, presence
	// and channel counts go through Redis and the nodes act as one.
	var broker hub.Broker = hub.NewMemoryBrokerWithHistory(history.NewMemory(), cfg.History)
	var presence hub.Presence = hub.NewMemoryPresence()
	var counts hub.Counts
	if cfg.RedisURL != "" {
		o := cluster.Options{App: cfg.AppID, Logger: log, History: cfg.History}
		if cfg.RedisCluster {
			a.cluster, err = cluster.OpenCluster(context.Background(), o, cfg.RedisURLs)
		} else {
			a.cluster, err = cluster.OpenGroup(context.Background(), o, cfg.RedisURLs)
		}
		if err != nil {
			return nil, fmt.Errorf("many-node mode (REDIS_URL): %w", err)
		}
		broker, presence, counts = a.cluster.Broker(), a.cluster.Presence(), a.cluster.Counts()
		a.metrics.CountClusterReceived(a.cluster.Received)
	}
	a.hub = hub.New(broker, presence, counts, a.hubHooks(), log)
	if a.cluster != nil {
		a.cluster.SetLocal(a.hub)
	}
	// Every delivered frame carries its Pusher form too, built once when a Pusher
	// connection is among the recipients.
	a.hub.SetAltEncoding(pusherproto.EncodeMessage)
	a.triggers = trigger.New(countingPublisher{a.hub, a.metrics.Published.WithLabelValues("api")}, cfg.EncryptionMasterKey, cfg.MaxPayloadBytes)
	if err := a.newEndpoints(tm); err != nil {
		return nil, err
	}
	return a, nil
}

// newEndpoints wires what serves clients on top of the hub: the channel rules, the
// socket.io protocol and its engines, and the Pusher protocol endpoint.
func (a *app) newEndpoints(tm *tokens.Manager) error {
	ipConns := limit.NewCounter()   // both endpoints' connections per address
	userConns := limit.NewCounter() // and per user (a Pusher connection's once signed in)
	// Both endpoints' cache misses on a channel make one cache_miss webhook per window.
	webhooks := webhook.Coalesce(webhookCoalesce, webhook.CacheMiss, func(ev webhook.Event) {
		if a.webhooks != nil {
			a.webhooks.Send(ev)
		}
	})
	// Developers' guards first, then a backend's signed authorization (Pusher's
	// authorizeChannel), then the claim rules.
	a.authorizer = channels.NewAuthorizer(&channels.Rules{Roles: a.cfg.ChannelRoles},
		append(slices.Clone(a.ext.Guards), channels.Delegated(a.cfg.AppKey, a.cfg.AppSecret))...)
	var err error
	a.protocol, err = protocol.New(protocol.Options{
		Settings: protocolSettings(a.cfg), Hub: a.hub, IPConns: ipConns, UserConns: userConns, Verifier: tm, Triggers: a.triggers, Metrics: a.metrics, Log: a.log,
		Authorizer: a.authorizer,
		Webhooks:   webhooks,
		Hooks:      a.ext.ChannelHooks,
		Events:     a.ext.Events,
	})
	if err != nil {
		return err
	}
	a.origins = middleware.NewOrigins(a.cfg.AllowedOrigins, a.cfg.AllowAnyOrigin)
	a.pusher = pusherproto.New(pusherproto.Options{
		Config: a.cfg, Hub: a.hub, Metrics: a.metrics, IPConns: ipConns, UserConns: userConns, Webhooks: webhooks,
		CheckOrigin: a.origins.Allowed, Log: a.log,
	})
	a.sockets, err = socket.NewServer(socket.Options{
		Authenticate: tm.Verify,
		CheckOrigin:  a.origins.Allowed,
		// A socket.io packet carries at most a payload plus its envelope.
		MaxFrameBytes: a.cfg.MaxPayloadBytes + 4<<10,
		PingInterval:  a.cfg.PingInterval,
		PingTimeout:   a.cfg.PingTimeout,
		MaxConnsPerIP: a.cfg.MaxConnsPerIP,
		Logger:        a.log,
		Handler: func(c *socket.Conn, event string, args []json.RawMessage) any {
			return a.protocol.Dispatch(c, event, args)
		},
		OnConnect: func(c *socket.Conn) { a.protocol.Connect(c) },
		Admit:     a.protocol.Admit,
		OnAuthRefused: func(r tokens.Reason) {
			a.metrics.AuthFailures.WithLabelValues(string(r)).Inc()
		},
		OnDisconnect: func(c *socket.Conn, reason string) { a.protocol.Disconnect(c, reason) },
		// socket.io 4.x connection state recovery: docs/history.md.
		RecoveryWindow: a.cfg.RecoveryWindow,
		OnRestore: func(c *socket.Conn, chans []socket.Restored) (func(), bool) {
			return a.protocol.Restore(c, chans)
		},
	})
	return err
}

// webhookCoalesce is the window a channel's cache_miss webhooks are coalesced over, the
// subscription_count window.
const webhookCoalesce = 100 * time.Millisecond

// newKeySet loads the identity provider's keys (JWKS_URL); nil without one. A provider
// unreachable now does not stop the start: /readyz answers 503 until its keys load.
func newKeySet(cfg *config.Config, log *slog.Logger, mx *metrics.Metrics) (*tokens.KeySet, error) {
	if cfg.JWKSURL == "" {
		return nil, nil
	}
	keys, err := tokens.NewKeySet(tokens.KeySetOptions{
		URL: cfg.JWKSURL, Refresh: cfg.JWKSRefresh, UnknownKID: cfg.JWKSUnknownKID, Log: log,
		OnFetch: func(err error, n int) {
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			mx.JWKSRefreshes.WithLabelValues(outcome).Inc()
			mx.JWKSKeys.Set(float64(n))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("config: JWKS_URL: %w", err)
	}
	return keys, nil
}

// protocolSettings are the values of cfg the socket protocol reads.
func protocolSettings(cfg *config.Config) protocol.Settings {
	return protocol.Settings{
		AppKey: cfg.AppKey, AppSecret: cfg.AppSecret, EncryptionMasterKey: cfg.EncryptionMasterKey,
		JWTLeeway: cfg.JWTLeeway, SubscribeRate: cfg.SubscribeRate, MaxSubscriptions: cfg.MaxSubscriptions,
		PresenceMaxMembers: cfg.PresenceMaxMembers, PresenceIncludeEmail: cfg.PresenceIncludeEmail,
		ClientEventRate: cfg.ClientEventRate, MaxPayloadBytes: cfg.MaxPayloadBytes,
		MaxConnsPerUser: cfg.MaxConnsPerUser, MaxConnsPerIP: cfg.MaxConnsPerIP,
		OnlineOnConnect: cfg.OnlineOnConnect,
	}
}
