package config

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/load.golden from Load")

// Load's outcome over a matrix of environments is pinned in testdata/load.golden: for
// each case, the error line, the warnings and a digest of the Config (generated secrets
// aside). The golden was written by the one 241-line Load before it was split into one
// loader per component, so the split provably kept every variable, default, warning
// and error line, and the order of the checks (with two bad values, the first checked
// is reported). Cases: every variable alone with each of its test values, on a
// development and a production base, and on the development base every pair of last
// values (mostly invalid).
// After an intended change, review the diff of `go test ./server/config -update`.
func TestLoadMatchesGolden(t *testing.T) {
	values := map[string][]string{
		"APP_ENV":                   {"production", "Development", "staging"},
		"ADDR":                      {":9000", "localhost:1", "nope", ":99999"},
		"TLS_CERT_FILE":             {"/nonexistent/cert.pem"},
		"TLS_KEY_FILE":              {"/nonexistent/key.pem"},
		"JWT_SECRET":                {goodSecret, "short", "a:" + goodSecret + ",b:" + goodSecret, " " + goodSecret + " "},
		"JWT_ISSUER":                {"https://issuer.example.com/"},
		"JWT_AUDIENCE":              {"aud"},
		"JWT_TTL":                   {"15m", "0s", "x"},
		"JWT_LEEWAY":                {"1m", "2h"},
		"JWKS_URL":                  {"https://kc.example.com/certs", "http://kc.example.com/certs", "ftp://x"},
		"JWKS_REFRESH_INTERVAL":     {"5m", "1s"},
		"JWKS_UNKNOWN_KID_INTERVAL": {"10s", "2h"},
		"CLAIM_ROLES":               {"realm_access.roles"},
		"APP_ID":                    {"42", "a/b"},
		"APP_KEY":                   {"key"},
		"APP_SECRET":                {"0123456789abcdef", "short"},
		"ENCRYPTION_MASTER_KEY":     {"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "!!", "YWJj"},
		"USERS_FILE":                {"/etc/users.json"},
		"CHANNEL_ROLES":             {"private-admin-*=admin", "bad"},
		"ALLOWED_ORIGINS":           {"https://App.example.com, http://localhost:3000", "*", "ftp://x"},
		"WEBHOOK_URL":               {"https://user:pw@hooks.example.com/in?token=t", "nope"},
		"REDIS_URL":                 {"redis://localhost:6379/0", "http://x"},
		"LOGIN_RATE_LIMIT":          {"5/1m", "7", "x/y"},
		"CLIENT_EVENT_RATE":         {"5", "0"},
		"MAX_PAYLOAD_BYTES":         {"1024", "1"},
		"PRESENCE_MAX_MEMBERS":      {"10", "-1"},
		"PRESENCE_INCLUDE_EMAIL":    {"true", "YES", "maybe"},
		"MAX_SUBSCRIPTIONS":         {"5", "0"},
		"SUBSCRIBE_RATE":            {"5", "x"},
		"MAX_CONNECTIONS_PER_USER":  {"0", "-5"},
		"MAX_CONNECTIONS_PER_IP":    {"0", "x"},
		"PUSHER_ACTIVITY_TIMEOUT":   {"60s", "1500ms"},
		"PUSHER_REQUIRE_SIGNIN":     {"true", "x"},
		"SUBSCRIPTION_COUNT":        {"1", "x"},
		"TRUSTED_PROXIES":           {"10.0.0.0/8, 127.0.0.1", "nope"},
		"CLIENT_IP_HEADER":          {"X-Real-IP", "Forwarded", "bad header"},
		"REQUEST_BODY_TIMEOUT":      {"5s", "0s"},
		"SHUTDOWN_TIMEOUT":          {"1s", "1h"},
		"DEBUG_ADDR":                {"127.0.0.1:6060", "0.0.0.0:6060", "x"},
		"LOG_FORMAT":                {"JSON", "xml"},
		"LOG_LEVEL":                 {"debug", "loud"},
	}
	prodBase := map[string]string{"APP_ENV": "production", "JWT_SECRET": goodSecret, "APP_ID": "1", "APP_KEY": "k",
		"APP_SECRET": "0123456789abcdef", "USERS_FILE": "/etc/users.json"}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)

	var lines []string
	failing := 0
	check := func(base, kv map[string]string) {
		get := func(k string) string { return kv[k] }
		c, w, err := Load(get)
		if err != nil {
			failing++
		}
		lines = append(lines, outcome(base, kv, c, w, err))
	}
	for _, base := range []map[string]string{nil, prodBase} {
		check(base, with(base, nil))
		for _, k := range names {
			for _, v := range values[k] {
				check(base, with(base, map[string]string{k: v}))
			}
		}
		if base != nil {
			continue // the pairs pin the order of the checks; once is enough
		}
		// Pairs of values, the last of each variable's list (mostly the invalid one).
		for i, a := range names {
			for _, b := range names[i+1:] {
				va, vb := values[a][len(values[a])-1], values[b][len(values[b])-1]
				check(base, with(base, map[string]string{a: va, b: vb}))
			}
		}
	}
	if n := len(lines); n < 900 || failing < n/2 {
		t.Fatalf("%d cases, %d of them refused: the matrix does not exercise the refusals", n, failing)
	}
	path := filepath.Join("testdata", "load.golden")
	got := strings.Join(lines, "\n") + "\n"
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(string(want), "\n")
	for i, line := range lines {
		if i >= len(wantLines) || line != wantLines[i] {
			w := "(none)"
			if i < len(wantLines) {
				w = wantLines[i]
			}
			t.Errorf("case %d differs from testdata/load.golden:\n got: %s\nwant: %s", i, line, w)
		}
	}
	if len(wantLines) != len(lines)+1 {
		t.Errorf("%d cases, testdata/load.golden has %d", len(lines), len(wantLines)-1)
	}
}

// outcome is one line of the golden: the environment (beyond the production base, when
// it is the base), the error line in full, and digests of the warnings and the Config.
func outcome(base, kv map[string]string, c *Config, warnings []string, err error) string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		if base[k] != kv[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var env strings.Builder
	if base != nil {
		env.WriteString("prod ")
	}
	for _, k := range keys {
		fmt.Fprintf(&env, "%s=%q ", k, kv[k])
	}
	digest := func(v any) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprintf("%+v", v))))[:12] }
	cfg := "-"
	if c != nil {
		cfg = digest(comparable(c))
	}
	return fmt.Sprintf("%s| %v | warnings %d %s | config %s", env.String(), err, len(warnings), digest(warnings), cfg)
}

func with(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// comparable is c without what is random per run (generated secrets).
func comparable(c *Config) *Config {
	if c == nil {
		return nil
	}
	cp := *c
	if cp.JWTSecretGenerated {
		cp.JWTSecret, cp.JWTSecrets = nil, nil
	}
	if cp.AppSecretGenerated {
		cp.AppSecret = ""
	}
	return &cp
}
