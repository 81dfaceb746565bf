package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const idpIssuer = "https://idp.example.com/realms/chat"

// A server taking an identity provider's tokens: not ready while the provider is down,
// then its tokens (claims mapped) beside our own on the handshake and on refresh.
func TestIdentityProviderTokens(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "kc-1", ALG: jwkset.AlgES256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	var down atomic.Bool
	down.Store(true)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(body)
	}))
	defer idp.Close()

	ts := startServer(t, map[string]string{
		"JWKS_URL": idp.URL + "/protocol/openid-connect/certs", "JWT_ISSUER": idpIssuer,
		"CLAIM_USER_ID": "preferred_username", "CLAIM_ROLES": "realm_access.roles",
		"CHANNEL_ROLES": "private-admin-*=admin",
	})
	readyz := func() int {
		res, err := http.Get(ts.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the provider down: %d", code)
	}
	if m := scrape(t, ts); m["jetsocket_jwks_refreshes_total{outcome=error}"] < 1 {
		t.Fatalf("failed fetch not counted: %v", m["jetsocket_jwks_refreshes_total{outcome=error}"])
	}
	down.Store(false)
	if !eventually(func() bool { return readyz() == http.StatusOK }) {
		t.Fatal("/readyz not 200 once the provider is back")
	}
	if m := scrape(t, ts); m["jetsocket_jwks_keys"] != 1 || m["jetsocket_jwks_refreshes_total{outcome=ok}"] < 1 {
		t.Fatalf("jwks metrics: keys %v ok %v", m["jetsocket_jwks_keys"], m["jetsocket_jwks_refreshes_total{outcome=ok}"])
	}

	mint := func(mod func(jwt.MapClaims)) string {
		now := time.Now()
		c := jwt.MapClaims{
			"sub": "0b6f-uuid", "preferred_username": "kim", "name": "Kim", "iss": idpIssuer,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"realm_access": map[string]any{"roles": []string{"offline_access", "admin"}},
		}
		if mod != nil {
			mod(c)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tok.Header["kid"] = "kc-1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c, _, err := ts.dial(t, mint(nil))
	if err != nil {
		t.Fatal(err)
	}
	if est := c.established(); est["user_id"] != "kim" {
		t.Fatalf("mapped user id: %v", est)
	}
	if res := c.ack(1, "jetsocket:subscribe", map[string]string{"channel": "private-admin-ops"}); res["ok"] != true {
		t.Fatalf("role from realm_access.roles: %v", res)
	}
	res := c.ack(2, "jetsocket:subscribe", map[string]string{"channel": "presence-lobby"})
	hash, _ := res["presence"].(map[string]any)["hash"].(map[string]any)
	if info, _ := hash["kim"].(map[string]any); info["name"] != "Kim" {
		t.Fatalf("presence user_info from the mapped claims: %v", res)
	}

	// Our own /login tokens work beside the provider's.
	own, _, err := ts.dial(t, ts.login(t, "bob", "bob123"))
	if err != nil {
		t.Fatal(err)
	}
	if est := own.established(); est["user_id"] != "2" {
		t.Fatalf("own token: %v", est)
	}

	// Refresh takes the same checks: the same user's provider token, then confusions.
	if res := c.ack(3, "jetsocket:refresh", map[string]string{"token": mint(nil)}); res["ok"] != true {
		t.Fatalf("refresh with a provider token: %v", res)
	}
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "kim", "iss": idpIssuer, "exp": time.Now().Add(time.Hour).Unix()})
	confused.Header["kid"] = "kc-1"
	confusedTok, _ := confused.SignedString([]byte(testSecret))
	if res := c.ack(4, "jetsocket:refresh", map[string]string{"token": confusedTok}); res["ok"] != false || res["code"] != "invalid_token" {
		t.Fatalf("refresh with an HS256 token naming a JWKS kid: %v", res)
	}
	if _, res, err := ts.dial(t, confusedTok); err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("handshake with an HS256 token naming a JWKS kid: %v %v", res, err)
	}
	// Roles revoked at the provider: after the refresh, the mapped claims have none.
	if res := c.ack(5, "jetsocket:refresh", map[string]string{"token": mint(func(m jwt.MapClaims) { delete(m, "realm_access") })}); res["ok"] != true {
		t.Fatalf("refresh without roles: %v", res)
	}
	if res := c.ack(7, "jetsocket:subscribe", map[string]string{"channel": "private-admin-other"}); res["ok"] != false || res["status"] != float64(403) {
		t.Fatalf("admin channel after the role was revoked: %v", res)
	}
	if res := c.ack(6, "jetsocket:refresh", map[string]string{"token": mint(func(m jwt.MapClaims) { m["iss"] = "https://other.example.com" })}); res["ok"] != false {
		t.Fatalf("refresh with another issuer: %v", res)
	}

	// The provider goes down again: cached keys keep working.
	down.Store(true)
	if c2, _, err := ts.dial(t, mint(nil)); err != nil {
		t.Fatalf("handshake during a provider outage: %v", err)
	} else {
		c2.established()
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ts.out.String(), mint(nil)[:40]) || strings.Contains(ts.out.String(), idp.URL) {
		t.Fatal("a token or the JWKS URL reached the logs")
	}
}
