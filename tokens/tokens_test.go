package tokens

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

func newTestManager(t *testing.T, mod func(*Config)) *Manager {
	t.Helper()
	cfg := Config{Secret: testSecret, TTL: time.Hour, Leeway: 30 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func validClaims(now time.Time) *Claims {
	return &Claims{
		Name: "Bob",
		Role: "user",
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "2",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
	}
}

func TestIssueThenVerify(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.Issuer = "jetsocket"; c.Audience = "chat" })
	u := User{ID: "7", Name: "Gina", Email: "g@example.com", Role: "admin", Groups: []string{"ops"}, Permissions: []string{"encrypted-channels"}}
	tok, exp, err := m.Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expiry %v not about an hour away", exp)
	}
	c, err := m.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.UserID() != "7" || c.Name != "Gina" || c.Role != "admin" || !c.HasGroup("ops") || !c.HasPermission("encrypted-channels") || c.HasGroup("staff") {
		t.Fatalf("claims not carried: %+v", c)
	}
	if c.Issuer != "jetsocket" || len(c.Audience) != 1 || c.Audience[0] != "chat" {
		t.Fatalf("iss/aud not set: %+v", c.RegisteredClaims)
	}
}

func TestVerifyRefusals(t *testing.T) {
	now := time.Now()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodHS256, testSecret, validClaims(now))
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name   string
		token  string
		mod    func(*Config)
		reason Reason
	}{
		{"empty", "", nil, ReasonMissing},
		{"garbage", "not-a-jwt", nil, ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], nil, ReasonMalformed},
		{"bad base64", parts[0] + ".%%%." + parts[2], nil, ReasonMalformed},
		{"oversized", good + strings.Repeat("A", MaxTokenBytes), nil, ReasonTooLarge},
		{"alg none", b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", nil, ReasonAlgorithm},
		{"alg None unsigned via library", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), nil, ReasonAlgorithm},
		{"HS512 same secret", sign(t, jwt.SigningMethodHS512, testSecret, validClaims(now)), nil, ReasonAlgorithm},
		{"HS384 same secret", sign(t, jwt.SigningMethodHS384, testSecret, validClaims(now)), nil, ReasonAlgorithm},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, validClaims(now)), nil, ReasonAlgorithm},
		{"unknown alg", b64([]byte(`{"alg":"XX999","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], nil, ReasonAlgorithm},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-1234"), validClaims(now)), nil, ReasonSignature},
		{"tampered payload", parts[0] + "." + b64([]byte(`{"sub":"1","role":"admin","exp":9999999999}`)) + "." + parts[2], nil, ReasonSignature},
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, func() *Claims {
			c := validClaims(now.Add(-3 * time.Hour))
			return c
		}()), nil, ReasonExpired},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, testSecret, func() *Claims {
			c := validClaims(now)
			c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Minute))
			return c
		}()), nil, ReasonNotYetValid},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, testSecret, func() *Claims {
			c := validClaims(now)
			c.IssuedAt = jwt.NewNumericDate(now.Add(10 * time.Minute))
			return c
		}()), nil, ReasonNotYetValid},
		{"no exp", sign(t, jwt.SigningMethodHS256, testSecret, func() *Claims {
			c := validClaims(now)
			c.ExpiresAt = nil
			return c
		}()), nil, ReasonClaims},
		{"no sub", sign(t, jwt.SigningMethodHS256, testSecret, func() *Claims {
			c := validClaims(now)
			c.Subject = ""
			return c
		}()), nil, ReasonClaims},
		{"wrong issuer", good, func(c *Config) { c.Issuer = "jetsocket" }, ReasonClaims},
		{"wrong audience", good, func(c *Config) { c.Audience = "chat" }, ReasonClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t, tt.mod)
			c, err := m.Verify(tt.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T is not *Error", err)
			}
			if te.Reason != tt.reason {
				t.Fatalf("reason = %q, want %q (%v)", te.Reason, tt.reason, err)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Fatal("error text contains the token")
			}
			if te.Message() == "" {
				t.Fatal("empty client message")
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	now := time.Now()
	c := validClaims(now.Add(-2 * time.Hour))
	c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second))
	tok := sign(t, jwt.SigningMethodHS256, testSecret, c)
	if _, err := newTestManager(t, nil).Verify(tok); err != nil {
		t.Fatalf("10s past exp within 30s leeway refused: %v", err)
	}
	if _, err := newTestManager(t, func(c *Config) { c.Leeway = 0 }).Verify(tok); ReasonOf(err) != ReasonExpired {
		t.Fatalf("without leeway: got %v, want expired", err)
	}
}

func TestNewManagerChecksConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"short secret":    {Secret: []byte("short"), TTL: time.Hour},
		"zero ttl":        {Secret: testSecret},
		"negative leeway": {Secret: testSecret, TTL: time.Hour, Leeway: -time.Second},
	} {
		if _, err := NewManager(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestContext(t *testing.T) {
	c := &Claims{Name: "x"}
	ctx := WithClaims(t.Context(), c)
	got, ok := FromContext(ctx)
	if !ok || got != c {
		t.Fatal("claims not found in context")
	}
	if _, ok := FromContext(t.Context()); ok {
		t.Fatal("claims found in empty context")
	}
}

func BenchmarkVerify(b *testing.B) {
	m, err := NewManager(Config{Secret: testSecret, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := m.Issue(User{ID: "1", Name: "A", Groups: []string{"g"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
