package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/server/apisig"
	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/redact"
	"github.com/jetsocket/jetsocket/tokens"
)

//go:embed page.html page.js
var pageFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(pageFiles, "page.html"))

// Limits of the example's input.
const (
	maxMessageRunes = 2000     // a chat line, not a document
	maxBodyBytes    = 16 << 10 // JSON {message, socket_id} with room to spare
	eventName       = "secure-message"
)

// socketIDPattern is Pusher's socket id form, which Jetsocket's ids have.
var socketIDPattern = regexp.MustCompile(`^\d+\.\d+$`)

// config is the backend's environment, validated.
type config struct {
	Addr         string
	JetsocketURL string // base URL of the Jetsocket server, for the HTTP API and the page
	AppID        string
	AppKey       string
	AppSecret    string
	MasterKey    []byte
	JWTSecret    []byte
	JWTIssuer    string
	JWTAudience  string
	Channel      string // the encrypted channel of the chat
	Group        string // the group claim that lets a user in (besides the docs' rule)
}

func loadConfig(getenv func(string) string) (config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr:         get("ADDR", "127.0.0.1:3000"),
		JetsocketURL: strings.TrimRight(get("JETSOCKET_URL", "http://localhost:8080"), "/"),
		AppID:        get("APP_ID", ""),
		AppKey:       get("APP_KEY", ""),
		AppSecret:    get("APP_SECRET", ""),
		JWTSecret:    []byte(get("JWT_SECRET", "")),
		JWTIssuer:    get("JWT_ISSUER", ""),
		JWTAudience:  get("JWT_AUDIENCE", ""),
		Channel:      get("SECURE_CHANNEL", "private-encrypted-secure-chat"),
		Group:        get("SECURE_GROUP", "staff"),
	}
	for name, v := range map[string]string{"APP_ID": c.AppID, "APP_KEY": c.AppKey, "APP_SECRET": c.AppSecret} {
		if v == "" {
			return c, fmt.Errorf("%s: required (the Jetsocket server's value)", name)
		}
	}
	if u, err := url.Parse(c.JetsocketURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("JETSOCKET_URL: not an http(s) URL: %q", c.JetsocketURL)
	}
	key, err := base64.StdEncoding.DecodeString(get("ENCRYPTION_MASTER_KEY", ""))
	if err != nil || len(key) != encryption.MasterKeySize {
		return c, fmt.Errorf("ENCRYPTION_MASTER_KEY: must be base64 of exactly %d bytes", encryption.MasterKeySize)
	}
	c.MasterKey = key
	if len(c.JWTSecret) < tokens.MinSecretBytes {
		return c, fmt.Errorf("JWT_SECRET: must be at least %d bytes (the Jetsocket server's secret)", tokens.MinSecretBytes)
	}
	if !strings.HasPrefix(c.Channel, channels.PrefixPrivate+"encrypted-") {
		return c, fmt.Errorf("SECURE_CHANNEL: must start with private-encrypted-, got %q", c.Channel)
	}
	if _, err := channels.Parse(c.Channel); err != nil {
		return c, fmt.Errorf("SECURE_CHANNEL: %w", err)
	}
	return c, nil
}

// app is the backend: its configuration, the token verifier and the HTTP client that
// calls Jetsocket's API.
type app struct {
	cfg    config
	tokens *tokens.Manager
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
}

func newApp(cfg config, client *http.Client, log *slog.Logger) (*app, error) {
	tm, err := tokens.NewManager(tokens.Config{
		Secret: cfg.JWTSecret, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		TTL: time.Hour, Leeway: 30 * time.Second, // TTL is for issuing; this app only verifies
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return &app{cfg: cfg, tokens: tm, client: client, log: log, now: time.Now}, nil
}

// routes lists every route of the backend.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /page.js", a.script)
	mux.HandleFunc("POST /jetsocket/auth", a.authorizeChannel)
	mux.HandleFunc("POST /send-encrypted-message", a.sendEncryptedMessage)
	return mux
}

// apiError is the one error shape of the backend: {error, message} with a status.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func fail(status int, code, msg string) *apiError { return &apiError{status, code, msg} }

func (a *app) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		a.log.Error("request failed", "path", r.URL.Path, "err", err)
		e = fail(http.StatusInternalServerError, "internal_error", "internal error")
	}
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// user verifies the request's Bearer JWT (one Jetsocket's /login issued).
func (a *app) user(r *http.Request) (*tokens.Claims, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, fail(http.StatusUnauthorized, "invalid_token", "an Authorization: Bearer <JWT> header is required")
	}
	claims, err := a.tokens.Verify(raw)
	if err != nil {
		return nil, fail(http.StatusUnauthorized, "invalid_token", "the token is not valid")
	}
	return claims, nil
}

// mayChat is this app's rule for the chat: the docs' rule for encrypted channels (the
// encrypted-channels permission or role admin) or membership of the configured group.
func (a *app) mayChat(c *tokens.Claims) bool {
	return c.HasPermission(channels.PermissionEncrypted) || c.Role == channels.RoleAdmin || c.HasGroup(a.cfg.Group)
}

// authorizeChannel is Pusher's channel authorization endpoint: form-encoded socket_id and
// channel_name in, {auth, shared_secret} out, for the chat channel and allowed users only.
func (a *app) authorizeChannel(w http.ResponseWriter, r *http.Request) {
	claims, err := a.user(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		a.writeError(w, r, fail(http.StatusBadRequest, "invalid_request", "the body must be form-encoded socket_id and channel_name"))
		return
	}
	socketID, channel := r.PostForm.Get("socket_id"), r.PostForm.Get("channel_name")
	if !socketIDPattern.MatchString(socketID) {
		a.writeError(w, r, fail(http.StatusBadRequest, "invalid_socket_id", "socket_id must look like 1234.5678"))
		return
	}
	if channel != a.cfg.Channel {
		a.writeError(w, r, fail(http.StatusForbidden, "forbidden", "this app authorizes "+a.cfg.Channel+" only"))
		return
	}
	if !a.mayChat(claims) {
		a.log.Info("channel authorization refused", "user_id", claims.UserID(), "channel", channel)
		a.writeError(w, r, fail(http.StatusForbidden, "forbidden", "you may not join the secure chat"))
		return
	}
	a.log.Info("channel authorized", "user_id", claims.UserID(), "socket_id", socketID, "channel", channel)
	writeJSON(w, http.StatusOK, map[string]string{
		"auth":          channels.ChannelAuth(a.cfg.AppKey, a.cfg.AppSecret, socketID, channel, ""),
		"shared_secret": encryption.SharedSecret(channel, a.cfg.MasterKey),
	})
}

// sendEncryptedMessage takes {message, socket_id?} from an allowed user, encrypts
// {from, user_id, message} with the channel key and triggers it through Jetsocket's API.
func (a *app) sendEncryptedMessage(w http.ResponseWriter, r *http.Request) {
	claims, err := a.user(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if !a.mayChat(claims) {
		a.writeError(w, r, fail(http.StatusForbidden, "forbidden", "you may not write to the secure chat"))
		return
	}
	var body struct {
		Message  string `json:"message"`
		SocketID string `json:"socket_id"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&body); err != nil {
		a.writeError(w, r, fail(http.StatusBadRequest, "invalid_request", "the body must be JSON {message, socket_id?}"))
		return
	}
	msg := strings.TrimSpace(body.Message)
	if msg == "" || len([]rune(msg)) > maxMessageRunes {
		a.writeError(w, r, fail(http.StatusBadRequest, "invalid_message", fmt.Sprintf("message must be 1 to %d characters", maxMessageRunes)))
		return
	}
	if body.SocketID != "" && !socketIDPattern.MatchString(body.SocketID) {
		a.writeError(w, r, fail(http.StatusBadRequest, "invalid_socket_id", "socket_id must look like 1234.5678"))
		return
	}
	from := claims.Name
	if from == "" {
		from = claims.UserID()
	}
	plain, err := json.Marshal(map[string]string{"from": from, "user_id": claims.UserID(), "message": msg})
	if err != nil {
		a.writeError(w, r, fmt.Errorf("encode message: %w", err))
		return
	}
	if err := a.trigger(r.Context(), plain, body.SocketID); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.Info("encrypted message sent", "user_id", claims.UserID(), "channel", a.cfg.Channel)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// trigger encrypts plain for the channel, as Pusher's server SDKs do before they trigger,
// and POSTs it to Jetsocket's /apps/{id}/events, signed as they sign.
func (a *app) trigger(ctx context.Context, plain []byte, exceptSocketID string) error {
	sealed, err := encryption.Encrypt(a.cfg.Channel, a.cfg.MasterKey, plain)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	data, err := json.Marshal(sealed)
	if err != nil {
		return fmt.Errorf("encode ciphertext: %w", err)
	}
	event := map[string]string{"name": eventName, "channel": a.cfg.Channel, "data": string(data)}
	if exceptSocketID != "" {
		event["socket_id"] = exceptSocketID
	}
	body, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	path := "/apps/" + url.PathEscape(a.cfg.AppID) + "/events"
	q := url.Values{}
	apisig.SignQuery(http.MethodPost, path, q, body, a.cfg.AppKey, a.cfg.AppSecret, a.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.JetsocketURL+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("trigger request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := a.client.Do(req)
	if err != nil {
		// The error names the URL, whose query carries the request's signature.
		a.log.Error("trigger failed", "err", redact.Error(err))
		return fail(http.StatusBadGateway, "trigger_failed", "Jetsocket could not be reached")
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusOK {
		a.log.Error("trigger refused", "status", res.StatusCode, "answer", string(answer))
		return fail(http.StatusBadGateway, "trigger_failed", fmt.Sprintf("Jetsocket answered %d", res.StatusCode))
	}
	return nil
}

// pageConfig is what the page needs to know, rendered into it as JSON.
type pageConfig struct {
	JetsocketURL string `json:"jetsocket_url"`
	AppKey       string `json:"app_key"`
	Channel      string `json:"channel"`
	Event        string `json:"event"`
}

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := pageTemplate.Execute(w, pageConfig{JetsocketURL: a.cfg.JetsocketURL, AppKey: a.cfg.AppKey, Channel: a.cfg.Channel, Event: eventName})
	if err != nil {
		a.log.Error("render page", "err", err)
	}
}

func (a *app) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	http.ServeFileFS(w, r, pageFiles, "page.js")
}
