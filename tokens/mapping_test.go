package tokens

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// decode reads a payload as the provider parser does (numbers kept exact).
func decode(t *testing.T, s string) jwt.MapClaims {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m jwt.MapClaims
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClaimMapping(t *testing.T) {
	auth0 := `{"sub":"auth0|5f1","name":"Ann","email":"ann@example.com",
		"https://example.com/roles":["admin","editor"],
		"https://example.com/groups":"ops",
		"permissions":["read:messages","encrypted-channels"],
		"scope":"openid profile email"}`
	keycloak := `{"sub":"f1e2-d3","preferred_username":"kc-user","name":"Kim",
		"realm_access":{"roles":["offline_access","moderator"]},
		"resource_access":{"chat.app":{"roles":["chat-admin"]}},
		"groups":["/staff","/staff/ops"],"scope":"openid chat:write"}`
	tests := []struct {
		name    string
		payload string
		mapping ClaimMapping
		want    Claims // Subject, Name, Email, Role, Roles, Groups, Permissions compared
		wantErr string
	}{
		{"defaults", `{"sub":"1","name":"A","roles":"admin","groups":["g1","g2"],"permissions":["p"]}`, ClaimMapping{},
			Claims{Name: "A", Role: "admin", Roles: []string{"admin"}, Groups: []string{"g1", "g2"}, Permissions: []string{"p"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, ""},
		{"auth0 namespaced claims with RBAC permissions", auth0,
			ClaimMapping{Roles: "https://example.com/roles", Groups: "https://example.com/groups"},
			Claims{Name: "Ann", Email: "ann@example.com", Role: "admin", Roles: []string{"admin", "editor"}, Groups: []string{"ops"}, Permissions: []string{"read:messages", "encrypted-channels"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "auth0|5f1"}}, ""},
		{"auth0 scope as permissions", auth0, ClaimMapping{Permissions: "scope"},
			Claims{Name: "Ann", Email: "ann@example.com", Permissions: []string{"openid", "profile", "email"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "auth0|5f1"}}, ""},
		{"keycloak realm roles, username as id", keycloak,
			ClaimMapping{UserID: "preferred_username", Roles: "realm_access.roles"},
			Claims{Name: "Kim", Role: "offline_access", Roles: []string{"offline_access", "moderator"}, Groups: []string{"/staff", "/staff/ops"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "kc-user"}}, ""},
		{"keycloak client roles under a client id with a dot", keycloak,
			ClaimMapping{Roles: "resource_access.chat.app.roles", Permissions: "scope"},
			Claims{Name: "Kim", Role: "chat-admin", Roles: []string{"chat-admin"}, Groups: []string{"/staff", "/staff/ops"}, Permissions: []string{"openid", "chat:write"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "f1e2-d3"}}, ""},
		{"whole dotted name wins over a path", `{"sub":"1","a.b":"whole","a":{"b":"nested"}}`, ClaimMapping{Name: "a.b"},
			Claims{Name: "whole", RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, ""},
		{"path when no whole name", `{"sub":"1","a":{"b":"nested"}}`, ClaimMapping{Name: "a.b"},
			Claims{Name: "nested", RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, ""},
		{"numeric user id kept exact", `{"uid":12345678901234567}`, ClaimMapping{UserID: "uid"},
			Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "12345678901234567"}}, ""},
		{"nested user id", `{"user":{"id":"u-9"}}`, ClaimMapping{UserID: "user.id"},
			Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u-9"}}, ""},
		{"absent optional claims", `{"sub":"1"}`, ClaimMapping{Roles: "realm_access.roles"},
			Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, ""},
		{"missing user id", `{"name":"x"}`, ClaimMapping{}, Claims{}, "no sub claim"},
		{"missing mapped user id", `{"sub":"1"}`, ClaimMapping{UserID: "uid"}, Claims{}, "no uid claim"},
		{"empty user id", `{"sub":""}`, ClaimMapping{}, Claims{}, "non-empty string"},
		{"user id an object", `{"sub":{"a":1}}`, ClaimMapping{}, Claims{}, "non-empty string"},
		{"user id too long", `{"sub":"` + strings.Repeat("x", maxUserIDBytes+1) + `"}`, ClaimMapping{}, Claims{}, "longer than"},
		{"name a list", `{"sub":"1","name":["a"]}`, ClaimMapping{}, Claims{}, "claim name must be a string"},
		{"roles with a number", `{"sub":"1","roles":["a",1]}`, ClaimMapping{}, Claims{}, "roles must be a string or a list"},
		{"groups an object", `{"sub":"1","groups":{"a":true}}`, ClaimMapping{}, Claims{}, "groups must be a string or a list"},
		{"scope a number", `{"sub":"1","scope":7}`, ClaimMapping{Permissions: "scope"}, Claims{}, "scope must be a string or a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.mapping.withDefaults().mapClaims(decode(t, tt.payload))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := tt.want
			if c.Subject != w.Subject || c.Name != w.Name || c.Email != w.Email || c.Role != w.Role ||
				!slices.Equal(c.Roles, w.Roles) || !slices.Equal(c.Groups, w.Groups) || !slices.Equal(c.Permissions, w.Permissions) {
				t.Fatalf("got  %+v\nwant %+v", c, w)
			}
		})
	}
}

// The mapped values reach what the rest of the server reads, through Verify.
func TestVerifyMapsProviderClaims(t *testing.T) {
	k := genKeys(t)
	p := newProvider(t, pubKey{"ec", "ES256", &k.p256.PublicKey})
	m := newJWKSManager(t, newKeySet(t, p.srv.URL, nil), func(c *Config) {
		c.Audience = "https://api.example.com"
		c.Mapping = ClaimMapping{Roles: "https://example.com/roles", Permissions: "scope"}
	})
	now := time.Now()
	claims := idpClaims(now)
	claims["aud"] = []string{"https://api.example.com", "https://idp.example.com/userinfo"}
	claims["https://example.com/roles"] = []string{"moderator", "admin"}
	claims["scope"] = "openid encrypted-channels"
	claims["jti"] = "abc"
	c, err := m.Verify(signKID(t, jwt.SigningMethodES256, k.p256, "ec", claims))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID() != "auth0|42" || !c.HasRole("admin") || !c.HasRole("moderator") || c.HasRole("user") ||
		!c.HasPermission("encrypted-channels") || c.ID != "abc" || len(c.Audience) != 2 ||
		c.Expiry().Unix() != now.Add(time.Hour).Unix() || c.IssuedAt == nil {
		t.Fatalf("mapped claims: %+v", c)
	}
}

func TestCheckClaimPath(t *testing.T) {
	for _, ok := range []string{"sub", "realm_access.roles", "https://example.com/roles", "cognito:groups"} {
		if err := CheckClaimPath(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " sub", "a..b", ".a", "a.", "a b"} {
		if err := CheckClaimPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
