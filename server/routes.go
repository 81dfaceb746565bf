package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/handlers"
	"github.com/jetsocket/jetsocket/middleware"
	"github.com/jetsocket/jetsocket/public"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

// routes lists every HTTP route of the server.
func (a *app) routes() http.Handler {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Trust X-Forwarded-For only from the configured proxies (gin trusts all by default).
	_ = r.SetTrustedProxies(a.cfg.TrustedProxies)
	r.Use(middleware.Recover(a.log), middleware.RequestLog(a.log))

	r.GET("/healthz", handlers.Healthz())
	r.GET("/readyz", handlers.Readyz(a.ready))
	r.GET("/metrics", gin.WrapH(a.metrics.Handler()))

	login := r.Group("/login", a.origins.CORS())
	login.POST("", handlers.Login(a.users, a.tokens, a.loginLimiter, func(outcome string) {
		a.metrics.Logins.WithLabelValues(outcome).Inc()
	}, a.log))
	login.OPTIONS("", func(*gin.Context) {}) // answered by CORS

	sock := r.Group("/socket.io", middleware.EngineErrors(), a.origins.CORS(),
		middleware.LimitBody(int64(a.cfg.MaxPayloadBytes)*4+64<<10),
		middleware.Handshake(middleware.HandshakeOptions{
			Verifier:  a.tokens,
			OnRefused: func(r tokens.Reason) { a.metrics.AuthFailures.WithLabelValues(string(r)).Inc() },
			Admit:     a.admit,
			Log:       a.log,
		}))
	sock.Any("/*any", gin.WrapH(a.sockets))

	// The Pusher-compatible HTTP API, signed as Pusher signs.
	maxAPIBody := int64(10*a.cfg.MaxPayloadBytes) + 256<<10
	api := r.Group("/apps/:app_id", middleware.APIAuth(a.cfg.AppID, a.cfg.AppKey, a.cfg.AppSecret, maxAPIBody, time.Now, a.log))
	api.POST("/events", handlers.TriggerEvent(a.triggers, a.log))
	api.POST("/batch_events", handlers.TriggerBatch(a.triggers, a.log))
	api.GET("/channels", handlers.ListChannels(a.hub, a.log))
	api.GET("/channels/:channel_name", handlers.ChannelInfo(a.hub, a.log))
	api.GET("/channels/:channel_name/users", handlers.ChannelUsers(a.hub, a.log))
	api.POST("/users/:user_id/terminate_connections", handlers.TerminateUser(a.triggers, a.log))

	static := http.FileServer(http.FS(public.FS()))
	r.NoRoute(func(c *gin.Context) {
		if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
			handlers.Abort(c, a.log, errs.New(errs.NotFound, "not_found", "no such route"))
			return
		}
		name := c.Request.URL.Path[1:]
		if name == "" {
			name = "index.html"
		}
		if _, err := fs.Stat(public.FS(), name); errors.Is(err, fs.ErrNotExist) {
			handlers.Abort(c, a.log, errs.New(errs.NotFound, "not_found", "no such route"))
			return
		}
		static.ServeHTTP(c.Writer, c.Request)
	})
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, errs.Body{Error: "method_not_allowed", Message: "method not allowed"})
	})
	return r
}

func (a *app) ready() error {
	if a.shuttingDown.Load() {
		return errors.New("shutting down")
	}
	if a.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := a.cluster.Ping(ctx); err != nil {
			return fmt.Errorf("redis unreachable: %w", err)
		}
	}
	return nil
}
