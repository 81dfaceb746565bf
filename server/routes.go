package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/handlers"
	"github.com/jetsocket/jetsocket/middleware"
	"github.com/jetsocket/jetsocket/public"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/socket"
	"github.com/jetsocket/jetsocket/tokens"
)

// routes lists every HTTP route of the server, then adds the developer's
// (Extensions.Routes); one of theirs that clashes with ours is an error.
func (a *app) routes() (_ http.Handler, err error) {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// The client address comes from the one header CLIENT_IP_HEADER names, and only
	// from the configured proxies (gin trusts every proxy and two headers by default).
	_ = r.SetTrustedProxies(a.cfg.TrustedProxies)
	r.RemoteIPHeaders = []string{a.cfg.ClientIPHeader}
	// Every body is read in full within REQUEST_BODY_TIMEOUT before routing goes on, at
	// most the largest any route takes (the API's); routes cap their own below.
	maxAPIBody := int64(10*a.cfg.MaxPayloadBytes) + 256<<10
	r.Use(middleware.Recover(a.log), middleware.RequestLog(a.log),
		middleware.ReadBody(maxAPIBody, a.cfg.RequestBodyTimeout, a.log))

	r.GET("/healthz", handlers.Healthz())
	r.GET("/readyz", handlers.Readyz(a.ready))
	r.GET("/metrics", gin.WrapH(a.metrics.Handler()))

	login := r.Group("/login", a.origins.CORS())
	login.POST("", handlers.Login(a.users, a.tokens, a.loginLimiter, func(outcome string) {
		a.metrics.Logins.WithLabelValues(outcome).Inc()
	}, a.log))
	login.OPTIONS("", func(*gin.Context) {}) // answered by CORS

	sock := r.Group("/socket.io", a.origins.CORS(), stampClientIP,
		middleware.LimitBody(int64(a.cfg.MaxPayloadBytes)*4+64<<10),
		middleware.Handshake(middleware.HandshakeOptions{
			Verifier:  a.tokens,
			OnRefused: func(r tokens.Reason) { a.metrics.AuthFailures.WithLabelValues(string(r)).Inc() },
			Admit:     a.protocol.Admit,
			Accepted:  socket.WithVerified,
			Log:       a.log,
		}))
	sock.Any("/*any", gin.WrapH(a.sockets))

	// The Pusher protocol endpoint (pusher-js, Laravel Echo, Pusher's mobile SDKs).
	r.GET("/app/:key", func(c *gin.Context) {
		a.pusher.Serve(c.Writer, c.Request, c.Param("key"), c.ClientIP())
	})

	// The server as pusher-js's channelAuthorization / userAuthentication endpoint for
	// JWT users.
	pusherApp := handlers.PusherApp{Key: a.cfg.AppKey, Secret: a.cfg.AppSecret, MasterKey: a.cfg.EncryptionMasterKey, IncludeEmail: a.cfg.PresenceIncludeEmail}
	pusherAuth := r.Group("/pusher", a.origins.CORS())
	pusherAuth.OPTIONS("/*any", func(*gin.Context) {}) // answered by CORS
	bearer := middleware.Bearer(a.tokens, a.log)
	pusherAuth.POST("/auth", bearer, handlers.PusherAuth(pusherApp, a.authorizer, a.log))
	pusherAuth.POST("/user-auth", bearer, handlers.PusherUserAuth(pusherApp, a.log))

	// The Pusher-compatible HTTP API, signed as Pusher signs.
	api := r.Group("/apps/:app_id", middleware.APIAuth(a.cfg.AppID, a.cfg.AppKey, a.cfg.AppSecret, maxAPIBody, time.Now, a.log))
	api.POST("/events", handlers.TriggerEvent(a.triggers, a.log))
	api.POST("/batch_events", handlers.TriggerBatch(a.triggers, a.log))
	api.GET("/channels", handlers.ListChannels(a.hub, a.log))
	api.GET("/channels/:channel_name", handlers.ChannelInfo(a.hub, a.log))
	api.GET("/channels/:channel_name/users", handlers.ChannelUsers(a.hub, a.log))
	api.GET("/channels/:channel_name/history", handlers.ChannelHistory(a.hub, a.log))
	api.POST("/users/:user_id/terminate_connections", handlers.TerminateUser(a.triggers, a.log))

	if a.ext.Routes != nil {
		// gin panics on a route registered twice.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("extension routes: %v", p)
			}
		}()
		ours := r.Routes()
		a.ext.Routes(r, Services{
			Bearer:   middleware.Bearer(a.tokens, a.log),
			Trigger:  a.triggers,
			Channels: a.hub,
			Log:      a.log,
		})
		if err := checkExtensionRoutes(r.Routes(), ours); err != nil {
			return nil, err
		}
	}

	static := http.FileServer(http.FS(public.FS()))
	r.NoRoute(func(c *gin.Context) {
		if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
			handlers.Abort(c, a.log, errs.New(errs.NotFound, errs.CodeNotFound, "no such route"))
			return
		}
		name := c.Request.URL.Path[1:]
		if name == "" {
			name = "index.html"
		}
		if _, err := fs.Stat(public.FS(), name); errors.Is(err, fs.ErrNotExist) {
			handlers.Abort(c, a.log, errs.New(errs.NotFound, errs.CodeNotFound, "no such route"))
			return
		}
		static.ServeHTTP(c.Writer, c.Request)
	})
	r.NoMethod(func(c *gin.Context) {
		handlers.Abort(c, a.log, errs.New(errs.MethodNotAllowed, errs.CodeMethodNotAllowed, "method not allowed"))
	})
	return r, nil
}

// checkExtensionRoutes refuses a developer's route under /apps/ (or one whose first
// segment is a parameter, which could match such a path): that prefix is the signed
// HTTP API's, and a route there would look signed without the signature check (the
// check is the API group's middleware, not the path's). Refused at start, rather than
// signed silently, so that nobody relies on a check their route does not have.
func checkExtensionRoutes(all, ours gin.RoutesInfo) error {
	builtin := make(map[string]bool, len(ours))
	for _, rt := range ours {
		builtin[rt.Method+" "+rt.Path] = true
	}
	for _, rt := range all {
		if builtin[rt.Method+" "+rt.Path] {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, "/"), "/")
		if first == "apps" || strings.HasPrefix(first, ":") || strings.HasPrefix(first, "*") {
			return fmt.Errorf("extension route %s %s: paths under /apps/ belong to the signed HTTP API, whose signature check does not cover a developer's routes; use another prefix (with Services.Bearer for a JWT)", rt.Method, rt.Path)
		}
	}
	return nil
}

// stampClientIP hands the resolved client address to the socket layer, which counts
// and logs connections by it.
func stampClientIP(c *gin.Context) {
	c.Request = socket.WithClientIP(c.Request, c.ClientIP())
	c.Next()
}

func (a *app) ready() error {
	if a.shuttingDown.Load() {
		return errors.New("shutting down")
	}
	if a.keys != nil {
		if err := a.keys.Ready(); err != nil {
			return err
		}
	}
	if a.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := a.cluster.Ping(ctx); err != nil {
			// The error names Redis's address: for the log, not for whoever can
			// reach /readyz.
			a.log.Warn("not ready: redis unreachable", "err", err)
			return errors.New("redis unreachable")
		}
	}
	return nil
}
