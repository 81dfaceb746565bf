// Package config reads and validates Jetsocket's configuration from the environment.
//
// Every value is checked up front so that a bad one stops the server at start-up with
// one line naming the variable, instead of failing later at the first request.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/redact"
	"github.com/jetsocket/jetsocket/tokens"
)

// Environments.
const (
	Development = "development"
	Production  = "production"
)

// RateLimit is "N events per Per".
type RateLimit struct {
	N   int
	Per time.Duration
}

func (r RateLimit) String() string { return fmt.Sprintf("%d/%s", r.N, r.Per) }

// Config is the validated configuration.
type Config struct {
	Env  string
	Addr string

	TLSCertFile string
	TLSKeyFile  string

	JWTSecret          []byte          // the signing secret: the first of JWTSecrets
	JWTSecrets         []tokens.Secret // JWT_SECRET: one plain secret, or id:secret entries
	JWTSecretGenerated bool            // development only: random per start
	JWTIssuer          string
	JWTAudience        string
	JWTTTL             time.Duration
	JWTLeeway          time.Duration

	JWKSURL        string // an identity provider's keys; empty: our own tokens only
	JWKSRefresh    time.Duration
	JWKSUnknownKID time.Duration       // least time between refreshes for unknown kids
	ClaimMapping   tokens.ClaimMapping // where provider tokens keep our claims

	AppID              string
	AppKey             string
	AppSecret          string
	AppSecretGenerated bool

	EncryptionMasterKey []byte // nil when not configured

	UsersFile    string
	ChannelRoles []channels.RoleRule

	AllowedOrigins []string // empty: same origin only
	AllowAnyOrigin bool

	WebhookURLs []string
	RedisURL    string
	RedisURLs   []string // RedisURL's servers (one or more)
	// RedisCluster: RedisURLs are seed nodes of one Redis Cluster, not independent servers.
	RedisCluster bool

	// History is which channels keep a recent history and how much (HISTORY_SIZE,
	// HISTORY_TTL, CHANNEL_HISTORY): PRODUCT.md §14, docs/history.md.
	History history.Policy
	// RecoveryWindow is how long a socket.io 4.x client that dropped can come back to its
	// session (connection state recovery, RECOVERY_WINDOW; 0: off): docs/history.md.
	RecoveryWindow time.Duration

	LoginRateLimit  RateLimit
	ClientEventRate int
	MaxPayloadBytes int

	PresenceMaxMembers   int  // members per presence channel
	PresenceIncludeEmail bool // put the email claim in presence user_info
	MaxSubscriptions     int  // channels per connection
	SubscribeRate        int  // subscribe attempts per second per connection
	MaxConnsPerUser      int  // 0: unlimited
	MaxConnsPerIP        int  // by client address (see TrustedProxies); 0: unlimited

	// PingInterval and PingTimeout are socket.io's pingInterval and pingTimeout: the v4
	// engine pings every PingInterval and closes a session whose pong is PingTimeout late.
	PingInterval time.Duration
	PingTimeout  time.Duration

	Pusher            Pusher // the Pusher protocol endpoint, /app/{key}
	SubscriptionCount bool   // pusher_internal:subscription_count (SUBSCRIPTION_COUNT)
	// OnlineOnConnect: every socket.io connection makes its token's user online for
	// watchlists (ONLINE_ON_CONNECT); off, only sign-ins do (either endpoint).
	OnlineOnConnect bool

	TrustedProxies     []string
	ClientIPHeader     string        // the one header a trusted proxy names the client in
	RequestBodyTimeout time.Duration // a request's body must arrive within this
	ShutdownTimeout    time.Duration
	DebugAddr          string // pprof listener; empty: off

	LogFormat string
	LogLevel  string
}

// Production reports whether the server runs with APP_ENV=production.
func (c *Config) Production() bool { return c.Env == Production }

// Error is a configuration error naming the variable at fault.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return "config: " + e.Var + ": " + e.Msg }

func bad(v, format string, args ...any) error {
	return &Error{Var: v, Msg: fmt.Sprintf(format, args...)}
}

// Load reads the configuration through getenv. It returns the first invalid value as an
// *Error, and the warnings (development fallbacks) to log once the logger exists. Each
// component has its own loader; they run in this order, which is the order of the
// variables' checks (the first invalid one is reported).
func Load(getenv func(string) string) (*Config, []string, error) {
	l := &loader{get: func(k string) string { return strings.TrimSpace(getenv(k)) }, raw: getenv}
	c := &Config{}
	for _, load := range []func(*loader) error{
		c.loadEnv,
		c.loadListener,
		c.loadTokens,
		c.loadApp,
		c.loadUsers,
		c.loadOrigins,
		c.loadWebhooks,
		c.loadCluster,
		func(l *loader) error {
			var err error
			c.History, err = historyPolicy(l.get)
			return err
		},
		c.loadRecovery,
		c.loadLimits,
		c.loadHeartbeat,
		func(l *loader) error { return c.loadPusher(l.get) },
		c.loadNetwork,
		c.loadLogs,
	} {
		if err := load(l); err != nil {
			return nil, nil, err
		}
	}
	return c, l.warnings, nil
}

// loader is what every component's loader reads through, and the warnings they add.
type loader struct {
	get      func(string) string // trimmed
	raw      func(string) string // as set: a secret keeps its spaces
	warnings []string
}

func (l *loader) warn(msg string) { l.warnings = append(l.warnings, msg) }

// loadEnv reads APP_ENV, which the other loaders consult (Production).
func (c *Config) loadEnv(l *loader) error {
	c.Env = strings.ToLower(l.get("APP_ENV"))
	switch c.Env {
	case "":
		c.Env = Development
	case Development, Production:
	default:
		return bad("APP_ENV", "must be %q or %q, got %q", Development, Production, c.Env)
	}
	return nil
}

// loadListener reads where the server listens: ADDR and TLS.
func (c *Config) loadListener(l *loader) error {
	c.Addr = l.get("ADDR")
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("ADDR", "must be host:port or :port (%v)", err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad("ADDR", "port %q is not a number from 0 to 65535", port)
	}

	c.TLSCertFile, c.TLSKeyFile = l.get("TLS_CERT_FILE"), l.get("TLS_KEY_FILE")
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return bad("TLS_CERT_FILE", "TLS_CERT_FILE and TLS_KEY_FILE must be set together")
	}
	for _, f := range []struct{ name, path string }{{"TLS_CERT_FILE", c.TLSCertFile}, {"TLS_KEY_FILE", c.TLSKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad(f.name, "cannot read %q: %v", f.path, errors.Unwrap(err))
		}
	}
	if c.Production() && c.TLSCertFile == "" {
		l.warn("production without TLS_CERT_FILE: a proxy in front must terminate TLS")
	}
	return nil
}

// loadTokens reads our own tokens' secret and claims, then the identity provider's
// variables (loadProvider).
func (c *Config) loadTokens(l *loader) error {
	var err error
	if s := l.raw("JWT_SECRET"); s != "" {
		if c.JWTSecrets, err = tokens.ParseSecrets(s); err != nil {
			return bad("JWT_SECRET", "%v", err)
		}
		c.JWTSecret = c.JWTSecrets[0].Key
	} else if c.Production() {
		return bad("JWT_SECRET", "required when APP_ENV=production")
	} else {
		c.JWTSecret = randomSecret()
		c.JWTSecrets = []tokens.Secret{{Key: c.JWTSecret}}
		c.JWTSecretGenerated = true
		l.warn("JWT_SECRET not set: using a random secret for this run; tokens will not survive a restart")
	}
	c.JWTIssuer, c.JWTAudience = l.get("JWT_ISSUER"), l.get("JWT_AUDIENCE")

	if c.JWTTTL, err = duration(l.get, "JWT_TTL", time.Hour, time.Second, 30*24*time.Hour); err != nil {
		return err
	}
	if c.JWTLeeway, err = duration(l.get, "JWT_LEEWAY", 30*time.Second, 0, time.Hour); err != nil {
		return err
	}
	l.warnings, err = c.loadProvider(l.get, l.warnings)
	return err
}

// loadApp reads the app's credentials (the HTTP API, webhook signatures, delegated
// authorization) and the channel encryption key.
func (c *Config) loadApp(l *loader) error {
	prod := c.Production()
	c.AppID, c.AppKey = l.get("APP_ID"), l.get("APP_KEY")
	if c.AppID == "" {
		if prod {
			return bad("APP_ID", "required when APP_ENV=production")
		}
		c.AppID = "jetsocket"
	}
	if c.AppKey == "" {
		if prod {
			return bad("APP_KEY", "required when APP_ENV=production")
		}
		c.AppKey = "jetsocket-key"
	}
	if strings.ContainsAny(c.AppID, "/?#") {
		return bad("APP_ID", "must not contain '/', '?' or '#'")
	}
	c.AppSecret = l.raw("APP_SECRET")
	switch {
	case c.AppSecret != "" && len(c.AppSecret) < 16:
		return bad("APP_SECRET", "must be at least 16 bytes, got %d", len(c.AppSecret))
	case c.AppSecret == "" && prod:
		return bad("APP_SECRET", "required when APP_ENV=production")
	case c.AppSecret == "":
		c.AppSecret = base64.RawURLEncoding.EncodeToString(randomSecret())
		c.AppSecretGenerated = true
		l.warn("APP_SECRET not set: using a random secret for this run; the HTTP API and webhooks need a fixed one")
	}

	if k := l.get("ENCRYPTION_MASTER_KEY"); k != "" {
		key, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return bad("ENCRYPTION_MASTER_KEY", "must be standard base64 (openssl rand -base64 32)")
		}
		if len(key) != 32 {
			return bad("ENCRYPTION_MASTER_KEY", "must decode to exactly 32 bytes, got %d", len(key))
		}
		c.EncryptionMasterKey = key
	}
	return nil
}

// loadUsers reads the accounts file and the channel rules by role.
func (c *Config) loadUsers(l *loader) error {
	c.UsersFile = l.get("USERS_FILE")
	if c.UsersFile == "" && c.Production() {
		return bad("USERS_FILE", "required when APP_ENV=production (the demo users are for development only)")
	}
	var err error
	if c.ChannelRoles, err = channels.ParseRoleRules(l.get("CHANNEL_ROLES")); err != nil {
		return bad("CHANNEL_ROLES", "%v", err)
	}
	return nil
}

// loadOrigins reads the browser origins allowed to connect and log in.
func (c *Config) loadOrigins(l *loader) error {
	for _, o := range splitList(l.get("ALLOWED_ORIGINS")) {
		if o == "*" {
			if c.Production() {
				return bad("ALLOWED_ORIGINS", "'*' is not allowed when APP_ENV=production")
			}
			c.AllowAnyOrigin = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("ALLOWED_ORIGINS", "%q is not an origin like https://app.example.com", o)
		}
		c.AllowedOrigins = append(c.AllowedOrigins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return nil
}

// loadWebhooks reads the webhook receivers; a bad URL is named without its credentials.
func (c *Config) loadWebhooks(l *loader) error {
	for _, w := range splitList(l.get("WEBHOOK_URL")) {
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("WEBHOOK_URL", "%q is not an http(s) URL", redact.URL(w))
		}
		c.WebhookURLs = append(c.WebhookURLs, w)
	}
	return nil
}

// loadCluster reads REDIS_URL (many-node mode).
func (c *Config) loadCluster(l *loader) error {
	c.RedisURL = l.get("REDIS_URL")
	var err error
	if c.RedisCluster, err = boolean(l.get, "REDIS_CLUSTER"); err != nil {
		return err
	}
	if c.RedisURL == "" {
		if c.RedisCluster {
			return bad("REDIS_CLUSTER", "needs REDIS_URL: the cluster's seed nodes")
		}
		return nil
	}
	// Several servers, comma-separated: channels are spread over them (docs/many-nodes.md).
	seen := make(map[string]bool)
	for i, s := range strings.Split(c.RedisURL, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return bad("REDIS_URL", "server %d of the list is empty", i+1)
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return bad("REDIS_URL", "server %d of the list must look like redis://host:6379/0", i+1)
		}
		where := u.Host + u.Path
		if seen[where] {
			return bad("REDIS_URL", "server %d of the list (%s) is listed twice", i+1, where)
		}
		seen[where] = true
		c.RedisURLs = append(c.RedisURLs, s)
	}
	return nil
}

// loadLimits reads the rate and size limits of logins, connections, subscriptions,
// presence and client events.
func (c *Config) loadLimits(l *loader) error {
	var err error
	if c.LoginRateLimit, err = rateLimit(l.get, "LOGIN_RATE_LIMIT", RateLimit{N: 100, Per: 15 * time.Minute}); err != nil {
		return err
	}
	if err = l.integers(
		intVar{&c.ClientEventRate, "CLIENT_EVENT_RATE", 10, 1, 10_000},
		intVar{&c.MaxPayloadBytes, "MAX_PAYLOAD_BYTES", 10240, 64, 10 << 20},
		intVar{&c.PresenceMaxMembers, "PRESENCE_MAX_MEMBERS", 100, 1, 100_000},
	); err != nil {
		return err
	}
	if c.PresenceIncludeEmail, err = boolean(l.get, "PRESENCE_INCLUDE_EMAIL"); err != nil {
		return err
	}
	return l.integers(
		intVar{&c.MaxSubscriptions, "MAX_SUBSCRIPTIONS", 100, 1, 100_000},
		intVar{&c.SubscribeRate, "SUBSCRIBE_RATE", 20, 1, 10_000},
		intVar{&c.MaxConnsPerUser, "MAX_CONNECTIONS_PER_USER", 100, 0, 1_000_000},
		intVar{&c.MaxConnsPerIP, "MAX_CONNECTIONS_PER_IP", 1000, 0, 1_000_000},
	)
}

// intVar is an integer variable: where it goes, its default and bounds.
type intVar struct {
	dst           *int
	name          string
	def, min, max int
}

// integers reads vars in order; the first invalid one is the error.
func (l *loader) integers(vars ...intVar) error {
	for _, v := range vars {
		var err error
		if *v.dst, err = integer(l.get, v.name, v.def, v.min, v.max); err != nil {
			return err
		}
	}
	return nil
}

// loadHeartbeat reads PING_INTERVAL and PING_TIMEOUT. Bounds: a ping every second at
// most (each costs every client a packet), and a client silent for at most ten minutes.
func (c *Config) loadHeartbeat(l *loader) error {
	var err error
	if c.PingInterval, err = duration(l.get, "PING_INTERVAL", 25*time.Second, time.Second, 10*time.Minute); err != nil {
		return err
	}
	c.PingTimeout, err = duration(l.get, "PING_TIMEOUT", 20*time.Second, time.Second, 10*time.Minute)
	return err
}

// loadNetwork reads how clients are known behind proxies, and the request and
// shutdown budgets and the debug listener.
func (c *Config) loadNetwork(l *loader) error {
	for _, p := range splitList(l.get("TRUSTED_PROXIES")) {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return bad("TRUSTED_PROXIES", "%q is neither an IP nor a CIDR", p)
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	// One header only: gin honours X-Real-IP as well as X-Forwarded-For by default, and a
	// client behind a proxy that sets only one of them can rotate its address with the
	// other (escaping the login and connection limits).
	c.ClientIPHeader = l.get("CLIENT_IP_HEADER")
	switch {
	case c.ClientIPHeader == "":
		c.ClientIPHeader = "X-Forwarded-For"
	case strings.EqualFold(c.ClientIPHeader, "Forwarded"):
		return bad("CLIENT_IP_HEADER", "the Forwarded header (RFC 7239) is not supported: name one that carries plain addresses, such as X-Forwarded-For or X-Real-IP")
	case !headerName.MatchString(c.ClientIPHeader):
		return bad("CLIENT_IP_HEADER", "%q is not an HTTP header name", c.ClientIPHeader)
	default:
		if len(c.TrustedProxies) == 0 {
			l.warn("CLIENT_IP_HEADER is set but TRUSTED_PROXIES is empty: the header is ignored and clients are known by their TCP address")
		}
	}
	var err error
	if c.RequestBodyTimeout, err = duration(l.get, "REQUEST_BODY_TIMEOUT", 10*time.Second, time.Second, 10*time.Minute); err != nil {
		return err
	}
	if c.ShutdownTimeout, err = duration(l.get, "SHUTDOWN_TIMEOUT", 10*time.Second, 0, 10*time.Minute); err != nil {
		return err
	}

	if c.DebugAddr = l.get("DEBUG_ADDR"); c.DebugAddr != "" {
		host, _, err := net.SplitHostPort(c.DebugAddr)
		if err != nil {
			return bad("DEBUG_ADDR", "must be host:port (%v)", err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			// Profiles expose memory contents: never on a public interface.
			return bad("DEBUG_ADDR", "must be a loopback address such as 127.0.0.1:6060, got %q", c.DebugAddr)
		}
	}
	return nil
}

// loadLogs reads the log format and level.
func (c *Config) loadLogs(l *loader) error {
	c.LogFormat = strings.ToLower(l.get("LOG_FORMAT"))
	switch c.LogFormat {
	case "":
		c.LogFormat = "text"
		if c.Production() {
			c.LogFormat = "json"
		}
	case "text", "json":
	default:
		return bad("LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	}
	c.LogLevel = strings.ToLower(l.get("LOG_LEVEL"))
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		return bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return nil
}

// loadProvider reads the identity provider's variables: JWKS_URL, its intervals and
// the claim mapping.
func (c *Config) loadProvider(get func(string) string, warnings []string) ([]string, error) {
	var err error
	if c.JWKSURL = get("JWKS_URL"); c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("JWKS_URL", "must be an http(s) URL such as https://tenant.auth0.com/.well-known/jwks.json")
		}
		if c.Production() && u.Scheme != "https" && !loopback(u.Hostname()) {
			// Keys fetched over plain HTTP can be swapped by anyone on the path.
			return nil, bad("JWKS_URL", "must be https when APP_ENV=production")
		}
		if c.JWTIssuer == "" {
			// A provider's keys may sign tokens of other tenants or projects
			// (Firebase, Google): only the issuer tells ours apart.
			return nil, bad("JWT_ISSUER", "required with JWKS_URL: set it to the provider's issuer (the iss of its tokens)")
		}
		if c.JWTAudience == "" {
			// One issuer signs the tokens of every API or client of a tenant or realm;
			// only aud says a token was meant for us. Not required: some providers'
			// access tokens carry no aud (Cognito's).
			warnings = append(warnings, "JWKS_URL without JWT_AUDIENCE: any token of this issuer is accepted, including those it issues for other APIs or clients; set JWT_AUDIENCE to this server's audience")
		}
	}
	if c.JWKSRefresh, err = duration(get, "JWKS_REFRESH_INTERVAL", tokens.DefaultJWKSRefresh, 10*time.Second, 24*time.Hour); err != nil {
		return nil, err
	}
	if c.JWKSUnknownKID, err = duration(get, "JWKS_UNKNOWN_KID_INTERVAL", tokens.DefaultJWKSUnknownKID, time.Second, time.Hour); err != nil {
		return nil, err
	}
	m := &c.ClaimMapping
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"CLAIM_USER_ID", &m.UserID}, {"CLAIM_NAME", &m.Name}, {"CLAIM_ROLES", &m.Roles},
		{"CLAIM_GROUPS", &m.Groups}, {"CLAIM_PERMISSIONS", &m.Permissions},
	} {
		v := get(f.name)
		if v == "" {
			continue
		}
		if err := tokens.CheckClaimPath(v); err != nil {
			return nil, bad(f.name, "must be a claim name or a dotted path such as realm_access.roles: %v", err)
		}
		*f.dst = v
		if c.JWKSURL == "" {
			warnings = append(warnings, f.name+" has no effect without JWKS_URL: it maps the claims of an identity provider's tokens")
		}
	}
	return warnings, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// headerName is an HTTP header name as proxies write them (an RFC 9110 token, letters,
// digits and '-' in practice).
var headerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

func randomSecret() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS has no entropy source: nothing is safe
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func duration(get func(string) string, name string, def, lo, hi time.Duration) (time.Duration, error) {
	s := get(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad(name, "%q is not a duration like 30s or 1h", s)
	}
	if d < lo || d > hi {
		return 0, bad(name, "must be between %s and %s, got %s", lo, hi, d)
	}
	return d, nil
}

// loadRecovery reads RECOVERY_WINDOW (socket.io 4.x connection state recovery).
func (c *Config) loadRecovery(l *loader) error {
	var err error
	c.RecoveryWindow, err = durationOrOff(l.get, "RECOVERY_WINDOW", 2*time.Minute, time.Second, time.Hour)
	return err
}

// durationOrOff is duration with "0" turning the feature off (0).
func durationOrOff(get func(string) string, name string, def, lo, hi time.Duration) (time.Duration, error) {
	if get(name) == "0" {
		return 0, nil
	}
	return duration(get, name, def, lo, hi)
}

func integer(get func(string) string, name string, def, lo, hi int) (int, error) {
	s := get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, bad(name, "%q is not a whole number", s)
	}
	if n < lo || n > hi {
		return 0, bad(name, "must be between %d and %d, got %d", lo, hi, n)
	}
	return n, nil
}

// rateLimit parses "N" (per 15 minutes, as the default) or "N/duration".
func rateLimit(get func(string) string, name string, def RateLimit) (RateLimit, error) {
	s := get(name)
	if s == "" {
		return def, nil
	}
	count, per, found := strings.Cut(s, "/")
	r := RateLimit{Per: def.Per}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 1 || n > 1_000_000 {
		return RateLimit{}, bad(name, "%q must be a count from 1 to 1000000, optionally /duration (e.g. 100/15m)", s)
	}
	r.N = n
	if found {
		d, err := time.ParseDuration(strings.TrimSpace(per))
		if err != nil || d < time.Second || d > 24*time.Hour {
			return RateLimit{}, bad(name, "%q: the window must be a duration from 1s to 24h (e.g. 100/15m)", s)
		}
		r.Per = d
	}
	return r, nil
}

// Pusher is the Pusher protocol endpoint's configuration.
type Pusher struct {
	// ActivityTimeout is the activity_timeout told to clients: after this long without
	// a message from a client the server pings it (PUSHER_ACTIVITY_TIMEOUT, Pusher's 120s).
	ActivityTimeout time.Duration
	// PongTimeout is how long a ping waits for any answer before the close 4201.
	PongTimeout time.Duration
	// RequireSignin closes (4009) a connection not signed in within SigninTimeout and
	// refuses its subscribes until it has.
	RequireSignin bool
	SigninTimeout time.Duration
}

func (c *Config) loadPusher(get func(string) string) error {
	var err error
	p := &c.Pusher
	if p.ActivityTimeout, err = duration(get, "PUSHER_ACTIVITY_TIMEOUT", 120*time.Second, time.Second, time.Hour); err != nil {
		return err
	}
	if p.ActivityTimeout%time.Second != 0 {
		// The protocol carries it in whole seconds.
		return bad("PUSHER_ACTIVITY_TIMEOUT", "must be whole seconds, got %s", p.ActivityTimeout)
	}
	if p.PongTimeout, err = duration(get, "PUSHER_PONG_TIMEOUT", 30*time.Second, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if p.RequireSignin, err = boolean(get, "PUSHER_REQUIRE_SIGNIN"); err != nil {
		return err
	}
	if p.SigninTimeout, err = duration(get, "PUSHER_SIGNIN_TIMEOUT", 30*time.Second, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if c.OnlineOnConnect, err = boolean(get, "ONLINE_ON_CONNECT"); err != nil {
		return err
	}
	c.SubscriptionCount, err = boolean(get, "SUBSCRIPTION_COUNT")
	return err
}

func boolean(get func(string) string, name string) (bool, error) {
	switch v := strings.ToLower(get(name)); v {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	default:
		return false, bad(name, "must be true or false, got %q", v)
	}
}

// historyPolicy reads HISTORY_SIZE (publications per channel, 0: off), HISTORY_TTL and
// CHANNEL_HISTORY (per-pattern overrides).
func historyPolicy(get func(string) string) (history.Policy, error) {
	size, err := integer(get, "HISTORY_SIZE", 100, 0, history.MaxSize)
	if err != nil {
		return history.Policy{}, err
	}
	ttl, err := duration(get, "HISTORY_TTL", 2*time.Minute, time.Second, history.MaxTTL)
	if err != nil {
		return history.Policy{}, err
	}
	p := history.Policy{Default: history.Limits{Size: size, TTL: ttl}}
	if size == 0 {
		p.Default = history.Limits{}
	}
	if p.Rules, err = history.ParseRules(get("CHANNEL_HISTORY"), history.Limits{Size: size, TTL: ttl}); err != nil {
		return history.Policy{}, bad("CHANNEL_HISTORY", "%v", err)
	}
	return p, nil
}
