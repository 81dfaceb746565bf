package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const testIssuer = "https://idp.example.com/"

// provider is an identity provider's JWKS endpoint: its keys can be swapped and it can
// be made to fail; it counts the fetches.
type provider struct {
	t    testing.TB
	srv  *httptest.Server
	mu   sync.Mutex
	body []byte
	fail atomic.Bool
	hits atomic.Int64
}

type pubKey struct {
	kid, alg string // alg empty: the JWK names none
	key      any    // a public key, or []byte for an "oct" key
}

func newProvider(t testing.TB, keys ...pubKey) *provider {
	p := &provider{t: t}
	p.set(keys...)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		if p.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) set(keys ...pubKey) {
	p.t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		opts := jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg)}}
		if _, ok := k.key.([]byte); ok {
			opts.Marshal.Private = true
		}
		j, err := jwkset.NewJWKFromKey(k.key, opts)
		if err != nil {
			p.t.Fatalf("jwk %s: %v", k.kid, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.body = b
	p.mu.Unlock()
}

func newKeySet(t *testing.T, url string, mod func(*KeySetOptions)) *KeySet {
	t.Helper()
	o := KeySetOptions{URL: url, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	ks, err := NewKeySet(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

func newJWKSManager(t *testing.T, ks *KeySet, mod func(*Config)) *Manager {
	t.Helper()
	cfg := Config{Secret: testSecret, TTL: time.Hour, Leeway: 30 * time.Second, Issuer: testIssuer, Keys: ks}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// signKID signs claims with method and key, with kid in the header when not empty.
func signKID(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func idpClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "auth0|42", "iss": testIssuer, "name": "Ida",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

type testKeys struct {
	rsa, rsa2, rsaShort *rsa.PrivateKey
	p256, p384          *ecdsa.PrivateKey
	ed                  ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func genKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keysVal.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.rsaShort, err = rsa.GenerateKey(rand.Reader, 1024)
		must(err)
		keysVal.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keysVal.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		_, keysVal.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
	return keysVal
}

func standardProvider(t *testing.T, k testKeys) *provider {
	return newProvider(t,
		pubKey{"rsa", "", &k.rsa.PublicKey},
		pubKey{"rsa-rs256", "RS256", &k.rsa2.PublicKey},
		pubKey{"p256", "ES256", &k.p256.PublicKey},
		pubKey{"p384", "ES384", &k.p384.PublicKey},
		pubKey{"ed", "EdDSA", k.ed.Public()},
	)
}

func TestJWKSAcceptsEachKeyType(t *testing.T) {
	k := genKeys(t)
	p := standardProvider(t, k)
	m := newJWKSManager(t, newKeySet(t, p.srv.URL, nil), nil)
	now := time.Now()
	for _, tt := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa, "rsa"},
		{"RS384", jwt.SigningMethodRS384, k.rsa, "rsa"},
		{"RS512", jwt.SigningMethodRS512, k.rsa, "rsa"},
		{"PS256", jwt.SigningMethodPS256, k.rsa, "rsa"},
		{"RS256 key with alg", jwt.SigningMethodRS256, k.rsa2, "rsa-rs256"},
		{"ES256", jwt.SigningMethodES256, k.p256, "p256"},
		{"ES384", jwt.SigningMethodES384, k.p384, "p384"},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, "ed"},
		{"RS256 without kid", jwt.SigningMethodRS256, k.rsa, ""},
		{"ES256 without kid", jwt.SigningMethodES256, k.p256, ""},
		{"EdDSA without kid", jwt.SigningMethodEdDSA, k.ed, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Verify(signKID(t, tt.method, tt.key, tt.kid, idpClaims(now)))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.UserID() != "auth0|42" || c.Name != "Ida" || c.Issuer != testIssuer || c.Expiry().IsZero() {
				t.Fatalf("claims: %+v", c)
			}
		})
	}
}

// Every refusal of PRODUCT §4, for tokens signed with a provider's keys, and the
// algorithm confusions.
func TestJWKSRefusals(t *testing.T) {
	k := genKeys(t)
	p := standardProvider(t, k)
	p.set(
		pubKey{"rsa", "", &k.rsa.PublicKey},
		pubKey{"rsa-rs256", "RS256", &k.rsa2.PublicKey},
		pubKey{"p256", "ES256", &k.p256.PublicKey},
		pubKey{"p384", "ES384", &k.p384.PublicKey},
		pubKey{"ed", "EdDSA", k.ed.Public()},
		pubKey{"short", "", &k.rsaShort.PublicKey},
		pubKey{"sym", "HS256", []byte("a-symmetric-key-in-the-jwks-0123456789")},
	)
	// Unknown kids must not refresh: every case is answered from the cache.
	ks := newKeySet(t, p.srv.URL, func(o *KeySetOptions) { o.UnknownKID = time.Hour })
	now := time.Now()
	good := signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", idpClaims(now))
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	header := func(h string) string { return b64([]byte(h)) }
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := idpClaims(now)
		mod(c)
		return c
	}
	pemPub, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pemPub})

	tests := []struct {
		name   string
		token  string
		mod    func(*Config)
		reason Reason
	}{
		{"alg none", header(`{"alg":"none","typ":"JWT","kid":"rsa"}`) + "." + parts[1] + ".", nil, ReasonAlgorithm},
		{"alg none via library", signKID(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa", idpClaims(now)), nil, ReasonAlgorithm},
		{"unknown alg", header(`{"alg":"XX999","kid":"rsa"}`) + "." + parts[1] + "." + parts[2], nil, ReasonAlgorithm},
		{"ES512 not accepted", header(`{"alg":"ES512","kid":"p256"}`) + "." + parts[1] + "." + parts[2], nil, ReasonAlgorithm},
		{"HS512 with provider kid", signKID(t, jwt.SigningMethodHS512, testSecret, "rsa", idpClaims(now)), nil, ReasonAlgorithm},
		// Algorithm confusion: the RSA public key used as an HMAC secret, with and without its kid.
		{"HS256 keyed with the RSA public key PEM", signKID(t, jwt.SigningMethodHS256, rsaPEM, "rsa", idpClaims(now)), nil, ReasonUnknownKey},
		{"HS256 keyed with the RSA public key PEM, no kid", signKID(t, jwt.SigningMethodHS256, rsaPEM, "", idpClaims(now)), nil, ReasonSignature},
		// An HS256 token naming a JWKS kid, even one signed with our own secret.
		{"HS256 with a JWKS kid", signKID(t, jwt.SigningMethodHS256, testSecret, "rsa", validClaims(now)), nil, ReasonUnknownKey},
		{"HS256 with the kid of an oct key in the JWKS", signKID(t, jwt.SigningMethodHS256, []byte("a-symmetric-key-in-the-jwks-0123456789"), "sym", idpClaims(now)), nil, ReasonUnknownKey},
		// Wrong algorithm for the key the kid names.
		{"RS256 naming an EC key", signKID(t, jwt.SigningMethodRS256, k.rsa, "p256", idpClaims(now)), nil, ReasonAlgorithm},
		{"ES384 naming a P-256 key", signKID(t, jwt.SigningMethodES384, k.p384, "p256", idpClaims(now)), nil, ReasonAlgorithm},
		{"ES256 naming the RSA key", signKID(t, jwt.SigningMethodES256, k.p256, "rsa", idpClaims(now)), nil, ReasonAlgorithm},
		{"EdDSA naming the RSA key", signKID(t, jwt.SigningMethodEdDSA, k.ed, "rsa", idpClaims(now)), nil, ReasonAlgorithm},
		{"PS256 where the JWK says RS256", signKID(t, jwt.SigningMethodPS256, k.rsa2, "rsa-rs256", idpClaims(now)), nil, ReasonAlgorithm},
		{"RSA key under 2048 bits", signKID(t, jwt.SigningMethodRS256, k.rsaShort, "short", idpClaims(now)), nil, ReasonAlgorithm},
		{"no kid, signed by the short key, which no longer counts", signKID(t, jwt.SigningMethodRS256, k.rsaShort, "", idpClaims(now)), nil, ReasonSignature},
		// Signature.
		{"signed by another key with a known kid", signKID(t, jwt.SigningMethodRS256, k.rsa2, "rsa", idpClaims(now)), nil, ReasonSignature},
		{"tampered payload", parts[0] + "." + b64([]byte(`{"sub":"1","iss":"`+testIssuer+`","roles":["admin"],"exp":9999999999}`)) + "." + parts[2], nil, ReasonSignature},
		{"unknown kid", signKID(t, jwt.SigningMethodRS256, k.rsa, "nope", idpClaims(now)), nil, ReasonUnknownKey},
		// Shape and claims.
		{"garbage", "not-a-jwt", nil, ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], nil, ReasonMalformed},
		{"bad base64", parts[0] + ".%%%." + parts[2], nil, ReasonMalformed},
		{"oversized", good + strings.Repeat("A", MaxTokenBytes), nil, ReasonTooLarge},
		{"expired", signKID(t, jwt.SigningMethodES256, k.p256, "p256", with(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		})), nil, ReasonExpired},
		{"not yet valid", signKID(t, jwt.SigningMethodEdDSA, k.ed, "ed", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), nil, ReasonNotYetValid},
		{"issued in the future", signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", with(func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Minute).Unix() })), nil, ReasonNotYetValid},
		{"no exp", signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", with(func(c jwt.MapClaims) { delete(c, "exp") })), nil, ReasonClaims},
		{"no sub", signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", with(func(c jwt.MapClaims) { delete(c, "sub") })), nil, ReasonClaims},
		{"wrong issuer", signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" })), nil, ReasonClaims},
		{"no issuer", signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", with(func(c jwt.MapClaims) { delete(c, "iss") })), nil, ReasonClaims},
		{"wrong audience", good, func(c *Config) { c.Audience = "https://api.example.com" }, ReasonClaims},
		{"roles of the wrong type", signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", with(func(c jwt.MapClaims) { c["roles"] = map[string]any{"a": 1} })), nil, ReasonClaims},
	}
	before := p.hits.Load()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newJWKSManager(t, ks, tt.mod)
			c, err := m.Verify(tt.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if got := ReasonOf(err); got != tt.reason {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.reason, err)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Fatal("error text contains the token")
			}
		})
	}
	// The one allowed unknown-kid refresh may have happened; no more.
	if n := p.hits.Load() - before; n > 1 {
		t.Fatalf("%d fetches while refusing, want at most 1", n)
	}
	// The server keeps accepting good tokens after all that.
	if _, err := newJWKSManager(t, ks, nil).Verify(good); err != nil {
		t.Fatalf("good token refused after the refusals: %v", err)
	}
}

func TestJWKSOwnTokensStillWork(t *testing.T) {
	k := genKeys(t)
	p := standardProvider(t, k)
	m := newJWKSManager(t, newKeySet(t, p.srv.URL, nil), nil)
	tok, _, err := m.Issue(User{ID: "7", Name: "Gina", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Verify(tok)
	if err != nil || c.UserID() != "7" || c.Role != "admin" {
		t.Fatalf("own token with a JWKS configured: %+v, %v", c, err)
	}
	// Own tokens are not mapped: a "sub" claim mapping elsewhere does not apply.
	m2 := newJWKSManager(t, m.cfg.Keys, func(c *Config) { c.Mapping.UserID = "uid" })
	if c, err := m2.Verify(tok); err != nil || c.UserID() != "7" {
		t.Fatalf("own token under a mapping: %+v, %v", c, err)
	}
	if _, err := m.Verify(signKID(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-1234"), "", validClaims(time.Now()))); ReasonOf(err) != ReasonSignature {
		t.Fatalf("HS256 with a wrong secret: %v", err)
	}
}

// A new kid appears and the old one disappears: the new one is fetched at its first
// token, the old one refused once it is gone.
func TestJWKSRotation(t *testing.T) {
	k := genKeys(t)
	p := newProvider(t, pubKey{"old", "RS256", &k.rsa.PublicKey})
	ks := newKeySet(t, p.srv.URL, func(o *KeySetOptions) { o.UnknownKID = time.Millisecond })
	m := newJWKSManager(t, ks, nil)
	now := time.Now()
	oldTok := signKID(t, jwt.SigningMethodRS256, k.rsa, "old", idpClaims(now))
	newTok := signKID(t, jwt.SigningMethodES256, k.p256, "new", idpClaims(now))
	if _, err := m.Verify(oldTok); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(newTok); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("new kid before it is published: %v", err)
	}
	p.set(pubKey{"new", "ES256", &k.p256.PublicKey})
	time.Sleep(5 * time.Millisecond) // past the unknown-kid interval of 1ms
	if _, err := m.Verify(newTok); err != nil {
		t.Fatalf("new kid once published: %v", err)
	}
	if _, err := m.Verify(oldTok); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("old kid once withdrawn: %v", err)
	}
}

// However many unknown kids arrive, the provider is asked at most once per interval.
func TestJWKSUnknownKIDFloodIsBounded(t *testing.T) {
	k := genKeys(t)
	p := newProvider(t, pubKey{"rsa", "RS256", &k.rsa.PublicKey})
	// A generous fetch timeout, and the tokens signed before the flood: on a loaded
	// machine (-race, 200 RSA signatures at once) the one fetch must not time out before
	// it reaches the provider (seen once in CI as "0 fetches").
	m := newJWKSManager(t, newKeySet(t, p.srv.URL, func(o *KeySetOptions) {
		o.UnknownKID, o.Timeout = time.Hour, time.Minute
	}), nil)
	now := time.Now()
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = signKID(t, jwt.SigningMethodRS256, k.rsa, fmt.Sprintf("random-%d", i), idpClaims(now))
	}
	start := p.hits.Load()
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Verify(tok); ReasonOf(err) != ReasonUnknownKey {
				t.Errorf("random kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := p.hits.Load() - start; n != 1 {
		t.Fatalf("%d fetches for 200 unknown kids, want exactly 1", n)
	}
	if _, err := m.Verify(signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", idpClaims(now))); err != nil {
		t.Fatalf("known kid during the flood: %v", err)
	}
}

func TestJWKSOutages(t *testing.T) {
	k := genKeys(t)
	p := newProvider(t, pubKey{"rsa", "RS256", &k.rsa.PublicKey})
	p.fail.Store(true)
	var failures, successes atomic.Int64
	ks := newKeySet(t, p.srv.URL, func(o *KeySetOptions) {
		o.Refresh = 50 * time.Millisecond
		o.OnFetch = func(err error, _ int) {
			if err != nil {
				failures.Add(1)
			} else {
				successes.Add(1)
			}
		}
	})
	if ks.Ready() == nil {
		t.Fatal("ready with no keys")
	}
	if failures.Load() == 0 {
		t.Fatal("the failed first fetch was not counted")
	}
	// The provider comes back: the retries load the keys.
	p.fail.Store(false)
	waitFor(t, func() bool { return ks.Ready() == nil })
	m := newJWKSManager(t, ks, nil)
	tok := signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", idpClaims(time.Now()))
	if _, err := m.Verify(tok); err != nil {
		t.Fatal(err)
	}
	// It fails again: the cached keys stay and the failures are counted.
	p.fail.Store(true)
	f := failures.Load()
	waitFor(t, func() bool { return failures.Load() > f+1 })
	if _, err := m.Verify(tok); err != nil {
		t.Fatalf("cached key dropped during an outage: %v", err)
	}
	if ks.Ready() != nil {
		t.Fatal("not ready during an outage with cached keys")
	}
	// An answer with no usable key is a failure too, not a revocation of every key.
	p.fail.Store(false)
	p.set()
	f = failures.Load()
	waitFor(t, func() bool { return failures.Load() > f })
	if _, err := m.Verify(tok); err != nil {
		t.Fatalf("cached key dropped on an empty key set: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewKeySetChecksURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/jwks", "/jwks.json", "http://"} {
		if _, err := NewKeySet(KeySetOptions{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

// BenchmarkVerifyHS256WithJWKS is the handshake's check of our own token when a JWKS is
// configured too (the header is read once more to route the token).
func BenchmarkVerifyHS256WithJWKS(b *testing.B) {
	k := genKeys(b)
	p := newProvider(b, pubKey{"rsa", "RS256", &k.rsa.PublicKey})
	ks, err := NewKeySet(KeySetOptions{URL: p.srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Close()
	m, err := NewManager(Config{Secret: testSecret, TTL: time.Hour, Keys: ks})
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
