package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

const goodSecret = "0123456789abcdef0123456789abcdef"

func TestDefaults(t *testing.T) {
	c, warnings, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Env != Development || c.Addr != ":8080" || c.JWTTTL != time.Hour || c.JWTLeeway != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if !c.JWTSecretGenerated || len(c.JWTSecret) < 32 {
		t.Fatal("development without JWT_SECRET must generate one")
	}
	if c.LoginRateLimit != (RateLimit{N: 100, Per: 15 * time.Minute}) || c.ClientEventRate != 10 || c.MaxPayloadBytes != 10240 {
		t.Fatalf("limits: %+v", c)
	}
	if c.Pusher != (Pusher{ActivityTimeout: 120 * time.Second, PongTimeout: 30 * time.Second, SigninTimeout: 30 * time.Second}) || c.SubscriptionCount {
		t.Fatalf("pusher defaults: %+v", c.Pusher)
	}
	if len(warnings) == 0 || !strings.Contains(strings.Join(warnings, "\n"), "JWT_SECRET") {
		t.Fatalf("no warning about the generated secret: %q", warnings)
	}
	c2, _, _ := Load(env(nil))
	if string(c.JWTSecret) == string(c2.JWTSecret) {
		t.Fatal("generated secrets repeat")
	}
}

func TestParses(t *testing.T) {
	c, _, err := Load(env(map[string]string{
		"APP_ENV": "production", "JWT_SECRET": goodSecret, "APP_ID": "42", "APP_KEY": "k", "APP_SECRET": "0123456789abcdef",
		"USERS_FILE": "/etc/users.json", "ALLOWED_ORIGINS": "https://App.example.com, http://localhost:3000",
		"LOGIN_RATE_LIMIT": "5/1m", "JWT_TTL": "15m", "ENCRYPTION_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"WEBHOOK_URL": "https://hooks.example.com/a,http://127.0.0.1:9/b", "REDIS_URL": "redis://localhost:6379/0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Production() || c.LogFormat != "json" || c.JWTTTL != 15*time.Minute || len(c.EncryptionMasterKey) != 32 {
		t.Fatalf("parsed: %+v", c)
	}
	if strings.Join(c.AllowedOrigins, " ") != "https://app.example.com http://localhost:3000" {
		t.Fatalf("origins: %q", c.AllowedOrigins)
	}
	if c.LoginRateLimit != (RateLimit{N: 5, Per: time.Minute}) || len(c.WebhookURLs) != 2 {
		t.Fatalf("parsed: %+v", c)
	}
	if c, _, _ := Load(env(map[string]string{"LOGIN_RATE_LIMIT": "7"})); c.LoginRateLimit != (RateLimit{N: 7, Per: 15 * time.Minute}) {
		t.Fatalf("plain count: %+v", c.LoginRateLimit)
	}
}

func TestClientIPHeader(t *testing.T) {
	c, _, err := Load(env(nil))
	if err != nil || c.ClientIPHeader != "X-Forwarded-For" {
		t.Fatalf("default: %q %v", c.ClientIPHeader, err)
	}
	c, warnings, err := Load(env(map[string]string{"CLIENT_IP_HEADER": "X-Real-IP", "TRUSTED_PROXIES": "10.0.0.0/8"}))
	if err != nil || c.ClientIPHeader != "X-Real-IP" {
		t.Fatalf("set: %q %v", c.ClientIPHeader, err)
	}
	if strings.Contains(strings.Join(warnings, "\n"), "CLIENT_IP_HEADER") {
		t.Fatalf("warned with trusted proxies: %q", warnings)
	}
	_, warnings, _ = Load(env(map[string]string{"CLIENT_IP_HEADER": "CF-Connecting-IP"}))
	if !strings.Contains(strings.Join(warnings, "\n"), "CLIENT_IP_HEADER") {
		t.Fatalf("no warning that the header is ignored without TRUSTED_PROXIES: %q", warnings)
	}
}

func TestRefusals(t *testing.T) {
	prod := map[string]string{"APP_ENV": "production", "JWT_SECRET": goodSecret, "APP_ID": "1", "APP_KEY": "k", "APP_SECRET": "0123456789abcdef", "USERS_FILE": "u.json"}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		v    string
	}{
		{"bad env", map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{"bad addr", map[string]string{"ADDR": "8080"}, "ADDR"},
		{"bad port", map[string]string{"ADDR": ":99999"}, "ADDR"},
		{"short secret", map[string]string{"JWT_SECRET": "short"}, "JWT_SECRET"},
		{"production without secret", with(prod, "JWT_SECRET", ""), "JWT_SECRET"},
		{"production without app secret", with(prod, "APP_SECRET", ""), "APP_SECRET"},
		{"production without users", with(prod, "USERS_FILE", ""), "USERS_FILE"},
		{"production any origin", with(prod, "ALLOWED_ORIGINS", "*"), "ALLOWED_ORIGINS"},
		{"bad ttl", map[string]string{"JWT_TTL": "soon"}, "JWT_TTL"},
		{"zero ttl", map[string]string{"JWT_TTL": "0s"}, "JWT_TTL"},
		{"negative leeway", map[string]string{"JWT_LEEWAY": "-1s"}, "JWT_LEEWAY"},
		{"key not base64", map[string]string{"ENCRYPTION_MASTER_KEY": "!!!"}, "ENCRYPTION_MASTER_KEY"},
		{"key 16 bytes", map[string]string{"ENCRYPTION_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZg=="}, "ENCRYPTION_MASTER_KEY"},
		{"origin with path", map[string]string{"ALLOWED_ORIGINS": "https://a.example/app"}, "ALLOWED_ORIGINS"},
		{"origin no scheme", map[string]string{"ALLOWED_ORIGINS": "a.example"}, "ALLOWED_ORIGINS"},
		{"webhook not http", map[string]string{"WEBHOOK_URL": "ftp://x"}, "WEBHOOK_URL"},
		{"redis not redis", map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL"},
		{"redis list second bad", map[string]string{"REDIS_URL": "redis://a:6379/0,http://b"}, "REDIS_URL"},
		{"redis list empty item", map[string]string{"REDIS_URL": "redis://a:6379/0,,redis://b:6379/0"}, "REDIS_URL"},
		{"redis list twice", map[string]string{"REDIS_URL": "redis://a:6379/0, redis://a:6379/0"}, "REDIS_URL"},
		{"redis cluster without url", map[string]string{"REDIS_CLUSTER": "true"}, "REDIS_CLUSTER"},
		{"redis cluster not bool", map[string]string{"REDIS_URL": "redis://a:6379/0", "REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER"},
		{"rate zero", map[string]string{"LOGIN_RATE_LIMIT": "0"}, "LOGIN_RATE_LIMIT"},
		{"rate bad window", map[string]string{"LOGIN_RATE_LIMIT": "5/forever"}, "LOGIN_RATE_LIMIT"},
		{"client rate", map[string]string{"CLIENT_EVENT_RATE": "ten"}, "CLIENT_EVENT_RATE"},
		{"payload tiny", map[string]string{"MAX_PAYLOAD_BYTES": "1"}, "MAX_PAYLOAD_BYTES"},
		{"tls half", map[string]string{"TLS_CERT_FILE": "/x.pem"}, "TLS_CERT_FILE"},
		{"tls missing", map[string]string{"TLS_CERT_FILE": "/nonexistent.pem", "TLS_KEY_FILE": "/nonexistent.key"}, "TLS_CERT_FILE"},
		{"proxy", map[string]string{"TRUSTED_PROXIES": "proxy.local"}, "TRUSTED_PROXIES"},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"app id slash", map[string]string{"APP_ID": "a/b"}, "APP_ID"},
		{"channel roles syntax", map[string]string{"CHANNEL_ROLES": "private-admin-*"}, "CHANNEL_ROLES"},
		{"channel roles no roles", map[string]string{"CHANNEL_ROLES": "private-admin-*="}, "CHANNEL_ROLES"},
		{"presence cap", map[string]string{"PRESENCE_MAX_MEMBERS": "0"}, "PRESENCE_MAX_MEMBERS"},
		{"presence email", map[string]string{"PRESENCE_INCLUDE_EMAIL": "maybe"}, "PRESENCE_INCLUDE_EMAIL"},
		{"max subscriptions", map[string]string{"MAX_SUBSCRIPTIONS": "-1"}, "MAX_SUBSCRIPTIONS"},
		{"subscribe rate", map[string]string{"SUBSCRIBE_RATE": "x"}, "SUBSCRIBE_RATE"},
		{"conns per user", map[string]string{"MAX_CONNECTIONS_PER_USER": "-1"}, "MAX_CONNECTIONS_PER_USER"},
		{"conns per ip", map[string]string{"MAX_CONNECTIONS_PER_IP": "many"}, "MAX_CONNECTIONS_PER_IP"},
		{"pusher activity fraction", map[string]string{"PUSHER_ACTIVITY_TIMEOUT": "1500ms"}, "PUSHER_ACTIVITY_TIMEOUT"},
		{"pusher activity zero", map[string]string{"PUSHER_ACTIVITY_TIMEOUT": "0s"}, "PUSHER_ACTIVITY_TIMEOUT"},
		{"pusher pong bad", map[string]string{"PUSHER_PONG_TIMEOUT": "soon"}, "PUSHER_PONG_TIMEOUT"},
		{"pusher require signin", map[string]string{"PUSHER_REQUIRE_SIGNIN": "maybe"}, "PUSHER_REQUIRE_SIGNIN"},
		{"pusher signin timeout", map[string]string{"PUSHER_SIGNIN_TIMEOUT": "1h"}, "PUSHER_SIGNIN_TIMEOUT"},
		{"subscription count", map[string]string{"SUBSCRIPTION_COUNT": "yes please"}, "SUBSCRIPTION_COUNT"},
		{"client ip header forwarded", map[string]string{"CLIENT_IP_HEADER": "Forwarded"}, "CLIENT_IP_HEADER"},
		{"client ip header space", map[string]string{"CLIENT_IP_HEADER": "X Real IP"}, "CLIENT_IP_HEADER"},
		{"client ip header list", map[string]string{"CLIENT_IP_HEADER": "X-Real-IP,X-Forwarded-For"}, "CLIENT_IP_HEADER"},
		{"client ip header colon", map[string]string{"CLIENT_IP_HEADER": "X-Real-IP:"}, "CLIENT_IP_HEADER"},
		{"body timeout zero", map[string]string{"REQUEST_BODY_TIMEOUT": "0s"}, "REQUEST_BODY_TIMEOUT"},
		{"body timeout bad", map[string]string{"REQUEST_BODY_TIMEOUT": "ten"}, "REQUEST_BODY_TIMEOUT"},
		{"debug addr public", map[string]string{"DEBUG_ADDR": "0.0.0.0:6060"}, "DEBUG_ADDR"},
		{"debug addr no port", map[string]string{"DEBUG_ADDR": "127.0.0.1"}, "DEBUG_ADDR"},
		{"keyed secret short", map[string]string{"JWT_SECRET": "new:" + goodSecret + ",old:short"}, "JWT_SECRET"},
		{"keyed secret repeated id", map[string]string{"JWT_SECRET": "a:" + goodSecret + ",a:" + goodSecret}, "JWT_SECRET"},
		{"keyed secret bad id", map[string]string{"JWT_SECRET": "a b:" + goodSecret}, "JWT_SECRET"},
		{"keyed secret entry without id", map[string]string{"JWT_SECRET": "a:" + goodSecret + "," + goodSecret}, "JWT_SECRET"},
		{"jwks not a url", map[string]string{"JWKS_URL": "idp.example.com/jwks", "JWT_ISSUER": "x"}, "JWKS_URL"},
		{"jwks not http", map[string]string{"JWKS_URL": "file:///etc/jwks.json", "JWT_ISSUER": "x"}, "JWKS_URL"},
		{"jwks plain http in production", with(with(prod, "JWKS_URL", "http://idp.example.com/jwks"), "JWT_ISSUER", "x"), "JWKS_URL"},
		{"jwks without issuer", map[string]string{"JWKS_URL": "https://idp.example.com/jwks"}, "JWT_ISSUER"},
		{"jwks refresh too often", map[string]string{"JWKS_REFRESH_INTERVAL": "1s"}, "JWKS_REFRESH_INTERVAL"},
		{"jwks refresh not a duration", map[string]string{"JWKS_REFRESH_INTERVAL": "hourly"}, "JWKS_REFRESH_INTERVAL"},
		{"unknown kid interval zero", map[string]string{"JWKS_UNKNOWN_KID_INTERVAL": "0s"}, "JWKS_UNKNOWN_KID_INTERVAL"},
		{"claim path empty segment", map[string]string{"CLAIM_ROLES": "realm_access..roles"}, "CLAIM_ROLES"},
		{"claim path with space", map[string]string{"CLAIM_USER_ID": "user id"}, "CLAIM_USER_ID"},
		{"claim path trailing dot", map[string]string{"CLAIM_PERMISSIONS": "scope."}, "CLAIM_PERMISSIONS"},
		{"claim name leading dot", map[string]string{"CLAIM_NAME": ".name"}, "CLAIM_NAME"},
		{"claim groups dots only", map[string]string{"CLAIM_GROUPS": "."}, "CLAIM_GROUPS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(env(tt.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a config error", err)
			}
			if ce.Var != tt.v {
				t.Fatalf("names %s, want %s: %v", ce.Var, tt.v, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "config: "+tt.v+": ") || strings.Contains(msg, "\n") {
				t.Fatalf("not one clear line: %q", msg)
			}
			if strings.Contains(err.Error(), "short") && tt.v == "JWT_SECRET" {
				t.Fatal("error repeats the secret")
			}
		})
	}
}

func TestIdentityProvider(t *testing.T) {
	c, warnings, err := Load(env(map[string]string{
		"JWT_SECRET": "new:" + goodSecret + "-new, old:" + goodSecret,
		"JWKS_URL":   "https://tenant.auth0.com/.well-known/jwks.json", "JWT_ISSUER": "https://tenant.auth0.com/",
		"JWKS_REFRESH_INTERVAL": "15m", "JWKS_UNKNOWN_KID_INTERVAL": "30s",
		"CLAIM_USER_ID": "sub", "CLAIM_ROLES": "https://example.com/roles", "CLAIM_GROUPS": "realm_access.groups",
		"CLAIM_PERMISSIONS": "scope", "CLAIM_NAME": "nickname",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.JWTSecrets) != 2 || c.JWTSecrets[0].ID != "new" || string(c.JWTSecret) != goodSecret+"-new" {
		t.Fatalf("secrets: %+v", c.JWTSecrets)
	}
	if c.JWKSURL == "" || c.JWKSRefresh != 15*time.Minute || c.JWKSUnknownKID != 30*time.Second {
		t.Fatalf("jwks: %+v", c)
	}
	m := c.ClaimMapping
	if m.UserID != "sub" || m.Roles != "https://example.com/roles" || m.Groups != "realm_access.groups" || m.Permissions != "scope" || m.Name != "nickname" {
		t.Fatalf("mapping: %+v", m)
	}
	for _, w := range warnings {
		if strings.Contains(w, "CLAIM_") {
			t.Fatalf("warned with JWKS_URL set: %q", w)
		}
	}
	// Without an audience, any token of the issuer would do (another API's): warned.
	if !strings.Contains(strings.Join(warnings, "\n"), "JWKS_URL without JWT_AUDIENCE") {
		t.Fatalf("no warning for JWKS_URL without JWT_AUDIENCE: %q", warnings)
	}
	_, warnings, err = Load(env(map[string]string{"JWT_SECRET": goodSecret,
		"JWKS_URL": "https://tenant.auth0.com/.well-known/jwks.json", "JWT_ISSUER": "https://tenant.auth0.com/", "JWT_AUDIENCE": "https://rt.example.com"}))
	if err != nil || strings.Contains(strings.Join(warnings, "\n"), "JWT_AUDIENCE") {
		t.Fatalf("warned with JWT_AUDIENCE set: %q %v", warnings, err)
	}
	// Plain HTTP on loopback is fine in production (a provider on the same host).
	if _, _, err := Load(env(map[string]string{"APP_ENV": "production", "JWT_SECRET": goodSecret, "APP_ID": "1", "APP_KEY": "k",
		"APP_SECRET": "0123456789abcdef", "USERS_FILE": "u.json", "JWKS_URL": "http://127.0.0.1:8081/jwks", "JWT_ISSUER": "x"})); err != nil {
		t.Fatal(err)
	}
	// Defaults, and a plain secret kept whole.
	c, warnings, err = Load(env(map[string]string{"JWT_SECRET": goodSecret, "CLAIM_ROLES": "roles"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWKSURL != "" || c.JWKSRefresh != time.Hour || c.JWKSUnknownKID != time.Minute || len(c.JWTSecrets) != 1 || c.JWTSecrets[0].ID != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "CLAIM_ROLES has no effect without JWKS_URL") {
		t.Fatalf("no warning for a mapping without JWKS_URL: %q", warnings)
	}
}

// A refused WEBHOOK_URL is named in the start-up error without its credentials.
func TestWebhookURLErrorIsRedacted(t *testing.T) {
	_, _, err := Load(env(map[string]string{"WEBHOOK_URL": "ftp://hook-user:pw-secret@hooks.example.com/x?token=tok-secret"}))
	if err == nil {
		t.Fatal("ftp webhook accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, "pw-secret") || strings.Contains(msg, "tok-secret") || strings.Contains(msg, "hook-user") || !strings.Contains(msg, "hooks.example.com") {
		t.Fatalf("error %q", msg)
	}
}

func TestPingSettings(t *testing.T) {
	c, _, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.PingInterval != 25*time.Second || c.PingTimeout != 20*time.Second {
		t.Fatalf("ping defaults %s/%s, want socket.io's 25s/20s", c.PingInterval, c.PingTimeout)
	}
	c, _, err = Load(env(map[string]string{"PING_INTERVAL": "10s", "PING_TIMEOUT": "5s"}))
	if err != nil || c.PingInterval != 10*time.Second || c.PingTimeout != 5*time.Second {
		t.Fatalf("parsed %v %v: %v", c.PingInterval, c.PingTimeout, err)
	}
	for _, kv := range []map[string]string{
		{"PING_INTERVAL": "soon"}, {"PING_INTERVAL": "100ms"}, {"PING_INTERVAL": "1h"},
		{"PING_TIMEOUT": "0s"}, {"PING_TIMEOUT": "-5s"}, {"PING_TIMEOUT": "11m"},
	} {
		var ce *Error
		if _, _, err := Load(env(kv)); !errors.As(err, &ce) {
			t.Errorf("%v: %v, want a config error naming the variable", kv, err)
		}
	}
}

func TestHistory(t *testing.T) {
	c, _, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.History.For("news"); l.Size != 100 || l.TTL != 2*time.Minute {
		t.Fatalf("defaults: %+v", l)
	}
	if l := c.History.For("#server-to-user-1"); l.On() {
		t.Fatalf("internal channels keep none: %+v", l)
	}
	c, _, err = Load(env(map[string]string{
		"HISTORY_SIZE": "50", "HISTORY_TTL": "30s",
		"CHANNEL_HISTORY": "presence-*=0; private-chat-*=1000/10m ;feed-*=7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for ch, want := range map[string][2]any{
		"news":             {50, 30 * time.Second},
		"presence-room":    {0, time.Duration(0)},
		"private-chat-abc": {1000, 10 * time.Minute},
		"feed-x":           {7, 30 * time.Second},
	} {
		if l := c.History.For(ch); l.Size != want[0].(int) || l.TTL != want[1].(time.Duration) {
			t.Fatalf("%s: %+v, want %v", ch, l, want)
		}
	}
	if c, _, _ := Load(env(map[string]string{"HISTORY_SIZE": "0", "CHANNEL_HISTORY": "chat-*=10"})); c.History.For("news").On() || c.History.For("chat-1").Size != 10 {
		t.Fatalf("off by default, on by pattern: %+v", c.History)
	}
	for k, v := range map[string]string{
		"HISTORY_SIZE":    "-1",
		"HISTORY_TTL":     "forever",
		"CHANNEL_HISTORY": "news",
	} {
		_, _, err := Load(env(map[string]string{k: v}))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != k {
			t.Fatalf("%s=%q: %v", k, v, err)
		}
	}
	for _, v := range []string{"=5", "a=", "a=x", "a=5/x", "a=5/1ms", "a=5/48h", "a=1000000", "[=5"} {
		_, _, err := Load(env(map[string]string{"CHANNEL_HISTORY": v}))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "CHANNEL_HISTORY" || !strings.Contains(err.Error(), "CHANNEL_HISTORY") {
			t.Fatalf("CHANNEL_HISTORY=%q: %v", v, err)
		}
	}
}

func TestRecoveryWindow(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 2 * time.Minute, "0": 0, "30s": 30 * time.Second, "1h": time.Hour} {
		c, _, err := Load(env(map[string]string{"RECOVERY_WINDOW": v}))
		if err != nil || c.RecoveryWindow != want {
			t.Fatalf("RECOVERY_WINDOW=%q: %v %v", v, c, err)
		}
	}
	for _, v := range []string{"500ms", "2h", "-1s", "soon"} {
		_, _, err := Load(env(map[string]string{"RECOVERY_WINDOW": v}))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "RECOVERY_WINDOW" {
			t.Fatalf("RECOVERY_WINDOW=%q: %v", v, err)
		}
	}
}

// REDIS_URL may list several servers; each is kept, in order.
func TestRedisURLList(t *testing.T) {
	c, _, err := Load(env(map[string]string{"REDIS_URL": "redis://a:6379/0, rediss://:pw@b:6380/1"}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.RedisURLs, " ") != "redis://a:6379/0 rediss://:pw@b:6380/1" || c.RedisCluster {
		t.Fatalf("servers: %q %v", c.RedisURLs, c.RedisCluster)
	}
	c, _, err = Load(env(map[string]string{"REDIS_URL": "redis://a:7000/0,redis://b:7000/0", "REDIS_CLUSTER": "true"}))
	if err != nil || !c.RedisCluster || len(c.RedisURLs) != 2 {
		t.Fatalf("cluster: %+v %v", c, err)
	}
}
