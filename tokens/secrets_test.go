package tokens

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	secretA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	secretB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestParseSecrets(t *testing.T) {
	got, err := ParseSecrets(secretA)
	if err != nil || len(got) != 1 || got[0].ID != "" || string(got[0].Key) != secretA {
		t.Fatalf("plain: %+v %v", got, err)
	}
	got, err = ParseSecrets("new:" + secretB + ", old-2024.1:" + secretA)
	if err != nil || len(got) != 2 || got[0].ID != "new" || string(got[0].Key) != secretB || got[1].ID != "old-2024.1" || string(got[1].Key) != secretA {
		t.Fatalf("keyed: %+v %v", got, err)
	}
	for s, want := range map[string]string{
		"":                                      "empty",
		"short":                                 "at least 32 bytes",
		"a:" + secretA + "," + secretB:          "entry 2: not id:secret",
		"a:" + secretA + ",a:" + secretB:        "entry 2: its id repeats",
		"a:short":                               "entry 1: secret must be at least 32",
		"bad id:" + secretA:                     "must be 1 to 64",
		":" + secretA:                           "must be 1 to 64",
		strings.Repeat("i", 65) + ":" + secretA: "must be 1 to 64",
	} {
		if _, err := ParseSecrets(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20q: err %v, want %q", s, err, want)
		}
	}
}

// A single secret that contains ':' is read as id:secret; refusing it must not print the
// part before the ':', which is secret.
func TestParseSecretsErrorsDoNotEchoTheSecret(t *testing.T) {
	for _, s := range []string{
		"correct horse:battery staple and more words here",
		"Tr0ub4dor-and-3:short",
		"k1:" + secretA + ",Tr0ub4dor-and-3:" + secretB + ",k1:" + secretA,
	} {
		_, err := ParseSecrets(s)
		if err == nil {
			t.Fatalf("%.12q: accepted", s)
		}
		for _, part := range []string{"correct horse", "Tr0ub4dor", "k1", "battery", "short"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("error %q names %q, a part of JWT_SECRET", err, part)
			}
		}
	}
}

// Rotating our own secret: the first signs (with its kid), all verify, tokens from
// before the ids (no kid) still verify, a kid that is not ours is refused.
func TestSecretRotation(t *testing.T) {
	plain := newTestManager(t, func(c *Config) { c.Secret = []byte(secretA) })
	oldTok, _, err := plain.Issue(User{ID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, oldTok); h["kid"] != nil {
		t.Fatalf("plain secret issued a kid: %v", h)
	}
	rotated := newTestManager(t, func(c *Config) {
		c.Secret = nil
		c.Secrets = []Secret{{ID: "new", Key: []byte(secretB)}, {ID: "old", Key: []byte(secretA)}}
	})
	newTok, _, err := rotated.Issue(User{ID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, newTok); h["kid"] != "new" {
		t.Fatalf("kid of a new token: %v", h)
	}
	now := time.Now()
	for name, tok := range map[string]string{
		"new token":                   newTok,
		"token from the plain secret": oldTok,
		"old secret with its kid":     signKID(t, jwt.SigningMethodHS256, []byte(secretA), "old", validClaims(now)),
	} {
		if _, err := rotated.Verify(tok); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for name, tc := range map[string]struct {
		tok    string
		reason Reason
	}{
		"unknown kid":             {signKID(t, jwt.SigningMethodHS256, []byte(secretA), "other", validClaims(now)), ReasonUnknownKey},
		"kid of the other secret": {signKID(t, jwt.SigningMethodHS256, []byte(secretA), "new", validClaims(now)), ReasonSignature},
		"no kid, neither secret":  {signKID(t, jwt.SigningMethodHS256, testSecret, "", validClaims(now)), ReasonSignature},
	} {
		if _, err := rotated.Verify(tc.tok); ReasonOf(err) != tc.reason {
			t.Errorf("%s: %v, want %s", name, err, tc.reason)
		}
	}
	// The new secret's tokens are refused once it is gone (the last rotation step
	// removes the old one instead).
	onlyOld := newTestManager(t, func(c *Config) { c.Secret = nil; c.Secrets = []Secret{{ID: "old", Key: []byte(secretA)}} })
	if _, err := onlyOld.Verify(newTok); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("token of a removed secret: %v", err)
	}
	if _, err := plain.Verify(newTok); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("a plain secret accepted a kid: %v", err)
	}
}

func TestNewManagerChecksSecrets(t *testing.T) {
	for name, cfg := range map[string]Config{
		"both":            {Secret: testSecret, Secrets: []Secret{{ID: "a", Key: testSecret}}, TTL: time.Hour},
		"several, no id":  {Secrets: []Secret{{ID: "a", Key: testSecret}, {Key: testSecret}}, TTL: time.Hour},
		"short in a list": {Secrets: []Secret{{ID: "a", Key: testSecret}, {ID: "b", Key: []byte("x")}}, TTL: time.Hour},
	} {
		if _, err := NewManager(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header
}
