package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/apisig"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/redact"
	"github.com/jetsocket/jetsocket/tokens"
)

const (
	testSecret = "secure-messaging-test-secret-0123456789abcdef"
	testKey    = "sm-key"
	testAPI    = "sm-api-secret"
)

var testMaster = []byte("0123456789abcdef0123456789abcdef")

func testEnv(over map[string]string) func(string) string {
	env := map[string]string{
		"APP_ID": "77", "APP_KEY": testKey, "APP_SECRET": testAPI,
		"ENCRYPTION_MASTER_KEY": base64.StdEncoding.EncodeToString(testMaster),
		"JWT_SECRET":            testSecret,
		"JETSOCKET_URL":         "http://127.0.0.1:1",
	}
	for k, v := range over {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

func TestLoadConfigRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"no app key", "APP_KEY", "", "APP_KEY"},
		{"no app secret", "APP_SECRET", "", "APP_SECRET"},
		{"short master key", "ENCRYPTION_MASTER_KEY", base64.StdEncoding.EncodeToString([]byte("short")), "ENCRYPTION_MASTER_KEY"},
		{"master key not base64", "ENCRYPTION_MASTER_KEY", "%%%", "ENCRYPTION_MASTER_KEY"},
		{"short JWT secret", "JWT_SECRET", "short", "JWT_SECRET"},
		{"not an encrypted channel", "SECURE_CHANNEL", "private-chat", "SECURE_CHANNEL"},
		{"bad channel name", "SECURE_CHANNEL", "private-encrypted-a b", "SECURE_CHANNEL"},
		{"bad Jetsocket URL", "JETSOCKET_URL", "ftp://x", "JETSOCKET_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(testEnv(map[string]string{tc.key: tc.value}))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	cfg, err := loadConfig(testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Channel != "private-encrypted-secure-chat" || cfg.Group != "staff" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// fakeJetsocket records the events POSTed to /apps/77/events after checking the signature.
type fakeJetsocket struct {
	mu     sync.Mutex
	events []map[string]string
	status int
}

func (f *fakeJetsocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := apisig.Verify(r.Method, r.URL.Path, r.URL.Query(), body, testKey, testAPI, time.Now()); err != nil || r.URL.Path != "/apps/77/events" {
		http.Error(w, `{"error":"invalid_signature"}`, http.StatusUnauthorized)
		return
	}
	var ev map[string]string
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	_, _ = w.Write([]byte("{}"))
}

func newTestApp(t *testing.T) (http.Handler, *fakeJetsocket, *tokens.Manager) {
	t.Helper()
	fake := &fakeJetsocket{}
	js := httptest.NewServer(fake)
	t.Cleanup(js.Close)
	cfg, err := loadConfig(testEnv(map[string]string{"JETSOCKET_URL": js.URL}))
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, js.Client(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := tokens.NewManager(tokens.Config{Secret: []byte(testSecret), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return a.routes(), fake, tm
}

func token(t *testing.T, tm *tokens.Manager, u tokens.User) string {
	t.Helper()
	tok, _, err := tm.Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func do(h http.Handler, method, path, bearer, contentType, body string) (int, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

const form = "application/x-www-form-urlencoded"

func TestAuthorizeChannel(t *testing.T) {
	h, _, tm := newTestApp(t)
	bob := token(t, tm, tokens.User{ID: "2", Name: "Bob", Role: "user", Groups: []string{"staff"}})
	carol := token(t, tm, tokens.User{ID: "3", Name: "Carol", Role: "moderator", Groups: []string{"support"}})
	dave := token(t, tm, tokens.User{ID: "4", Permissions: []string{"encrypted-channels"}})
	chat := url.Values{"socket_id": {"123.456"}, "channel_name": {"private-encrypted-secure-chat"}}.Encode()

	for _, who := range []string{bob, dave} {
		status, body := do(h, "POST", "/jetsocket/auth", who, form, chat)
		if status != 200 {
			t.Fatalf("status %d %v", status, body)
		}
		mac := hmac.New(sha256.New, []byte(testAPI))
		mac.Write([]byte("123.456:private-encrypted-secure-chat"))
		if want := testKey + ":" + hex.EncodeToString(mac.Sum(nil)); body["auth"] != want {
			t.Fatalf("auth = %v, want %s (Pusher's signature)", body["auth"], want)
		}
		key := sha256.Sum256(append([]byte("private-encrypted-secure-chat"), testMaster...))
		if body["shared_secret"] != base64.StdEncoding.EncodeToString(key[:]) {
			t.Fatalf("shared_secret = %v", body["shared_secret"])
		}
	}

	for _, tc := range []struct {
		name, bearer, body string
		status             int
		code               string
	}{
		{"no token", "", chat, 401, "invalid_token"},
		{"forged token", bob[:len(bob)-2] + "xx", chat, 401, "invalid_token"},
		{"not in the group", carol, chat, 403, "forbidden"},
		{"another channel", bob, url.Values{"socket_id": {"1.2"}, "channel_name": {"private-encrypted-other"}}.Encode(), 403, "forbidden"},
		{"bad socket id", bob, url.Values{"socket_id": {"1.2:x"}, "channel_name": {"private-encrypted-secure-chat"}}.Encode(), 400, "invalid_socket_id"},
		{"no socket id", bob, url.Values{"channel_name": {"private-encrypted-secure-chat"}}.Encode(), 400, "invalid_socket_id"},
		{"oversized body", bob, "socket_id=1.2&x=" + strings.Repeat("a", maxBodyBytes), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(h, "POST", "/jetsocket/auth", tc.bearer, form, tc.body)
			if status != tc.status || body["error"] != tc.code || body["message"] == "" {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if _, leaked := body["auth"]; leaked {
				t.Fatal("a refusal carries an auth")
			}
		})
	}
}

func TestSendEncryptedMessageTriggersCiphertextSignedAsPusher(t *testing.T) {
	h, fake, tm := newTestApp(t)
	bob := token(t, tm, tokens.User{ID: "2", Name: "Bob", Groups: []string{"staff"}})
	status, body := do(h, "POST", "/send-encrypted-message", bob, "application/json", `{"message":"  the plan <b>x</b> ", "socket_id":"9.9"}`)
	if status != 200 || body["ok"] != true {
		t.Fatalf("status %d %v", status, body)
	}
	if len(fake.events) != 1 {
		t.Fatalf("events %v", fake.events)
	}
	ev := fake.events[0]
	if ev["name"] != "secure-message" || ev["channel"] != "private-encrypted-secure-chat" || ev["socket_id"] != "9.9" {
		t.Fatalf("event %v", ev)
	}
	if strings.Contains(ev["data"], "plan") {
		t.Fatalf("plaintext on the wire: %s", ev["data"])
	}
	var sealed encryption.Payload
	if err := json.Unmarshal([]byte(ev["data"]), &sealed); err != nil {
		t.Fatal(err)
	}
	plain, err := encryption.Decrypt("private-encrypted-secure-chat", testMaster, sealed)
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]string
	if err := json.Unmarshal(plain, &msg); err != nil {
		t.Fatal(err)
	}
	if msg["from"] != "Bob" || msg["user_id"] != "2" || msg["message"] != "the plan <b>x</b>" {
		t.Fatalf("message %v", msg)
	}
}

func TestSendEncryptedMessageRefusals(t *testing.T) {
	h, fake, tm := newTestApp(t)
	bob := token(t, tm, tokens.User{ID: "2", Groups: []string{"staff"}})
	carol := token(t, tm, tokens.User{ID: "3", Groups: []string{"support"}})
	for _, tc := range []struct {
		name, bearer, body string
		status             int
		code               string
	}{
		{"no token", "", `{"message":"x"}`, 401, "invalid_token"},
		{"not allowed", carol, `{"message":"x"}`, 403, "forbidden"},
		{"not JSON", bob, `message=x`, 400, "invalid_request"},
		{"empty", bob, `{"message":"   "}`, 400, "invalid_message"},
		{"too long", bob, `{"message":"` + strings.Repeat("é", maxMessageRunes+1) + `"}`, 400, "invalid_message"},
		{"bad socket id", bob, `{"message":"x","socket_id":"abc"}`, 400, "invalid_socket_id"},
		{"oversized", bob, `{"message":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(h, "POST", "/send-encrypted-message", tc.bearer, "application/json", tc.body)
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	if len(fake.events) != 0 {
		t.Fatalf("refused messages were triggered: %v", fake.events)
	}

	// Jetsocket refusing the trigger is a 502 for the page, not a success.
	fake.status = http.StatusInternalServerError
	status, body := do(h, "POST", "/send-encrypted-message", bob, "application/json", `{"message":"x"}`)
	if status != http.StatusBadGateway || body["error"] != "trigger_failed" {
		t.Fatalf("got %d %v", status, body)
	}
}

func TestPageCarriesConfig(t *testing.T) {
	h, _, _ := newTestApp(t)
	req := httptest.NewRequest("GET", "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	page := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(page, `/js/jetsocket.js"`) || !strings.Contains(page, `"channel":"private-encrypted-secure-chat"`) {
		t.Fatalf("page %d:\n%s", rec.Code, page)
	}
	if strings.Contains(page, testAPI) || strings.Contains(page, base64.StdEncoding.EncodeToString(testMaster)) {
		t.Fatal("the page carries a secret")
	}
}

// Jetsocket unreachable: the log line says so without the signed query (auth_signature
// and auth_key would let anyone who reads the logs replay the message for a while).
func TestTriggerFailureLogsNoSignature(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	cfg, err := loadConfig(testEnv(map[string]string{"JETSOCKET_URL": gone.URL}))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	a, err := newApp(cfg, &http.Client{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := tokens.NewManager(tokens.Config{Secret: []byte(testSecret), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bob := token(t, tm, tokens.User{ID: "2", Name: "Bob", Groups: []string{"staff"}})
	if status, _ := do(a.routes(), "POST", "/send-encrypted-message", bob, "application/json", `{"message":"hi"}`); status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", status)
	}
	if !strings.Contains(logs.String(), "trigger failed") {
		t.Fatalf("no log line: %s", logs.String())
	}
	for _, k := range []string{"auth_signature=", "auth_key=", "body_md5="} {
		if i := strings.Index(logs.String(), k); i >= 0 && !strings.HasPrefix(logs.String()[i+len(k):], redact.Mask) {
			t.Errorf("%s logged with its value: %s", k, logs.String())
		}
	}
}
