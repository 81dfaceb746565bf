package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jetsocket/jetsocket/middleware"
	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/tokens"
)

// tokenClaims verifies "tok-<sub>[-enc]" as a token of user <sub> (with the
// encrypted-channels permission when -enc).
type tokenClaims struct{}

func (tokenClaims) Verify(tok string) (*tokens.Claims, error) {
	sub, ok := strings.CutPrefix(tok, "tok-")
	if !ok {
		return nil, errors.New("bad token")
	}
	cl := &tokens.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: strings.TrimSuffix(sub, "-enc")}}
	cl.Name = "N " + cl.Subject
	cl.Email = cl.Subject + "@example.test"
	if strings.HasSuffix(sub, "-enc") {
		cl.Permissions = []string{channels.PermissionEncrypted}
	}
	return cl, nil
}

func TestPusherAuth(t *testing.T) {
	gin.SetMode(gin.TestMode)
	master := []byte(strings.Repeat("k", 32))
	app := PusherApp{Key: "key", Secret: "secret", MasterKey: master}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := gin.New()
	bearer := middleware.Bearer(tokenClaims{}, log)
	r.POST("/pusher/auth", bearer, PusherAuth(app, channels.NewAuthorizer(&channels.Rules{}), log))
	r.POST("/pusher/user-auth", bearer, PusherUserAuth(app, log))

	do := func(path, token, ct, body string) (int, map[string]string) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		var m map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const formCT = "application/x-www-form-urlencoded"

	code, m := do("/pusher/auth", "tok-a", formCT, form("socket_id", "1.2", "channel_name", "private-user-a"))
	if code != 200 || m["auth"] != channels.ChannelAuth("key", "secret", "1.2", "private-user-a", "") || m["channel_data"] != "" {
		t.Fatalf("private: %d %v", code, m)
	}
	code, m = do("/pusher/auth", "tok-a", "application/json", `{"socket_id":"1.2","channel_name":"presence-x"}`)
	if code != 200 || m["channel_data"] != `{"user_id":"a","user_info":{"name":"N a"}}` ||
		m["auth"] != channels.ChannelAuth("key", "secret", "1.2", "presence-x", m["channel_data"]) {
		t.Fatalf("presence (JSON body, no email by default): %d %v", code, m)
	}
	code, m = do("/pusher/auth", "tok-a-enc", formCT, form("socket_id", "1.2", "channel_name", "private-encrypted-v"))
	if code != 200 || m["shared_secret"] != encryption.SharedSecret("private-encrypted-v", master) {
		t.Fatalf("encrypted: %d %v", code, m)
	}
	code, m = do("/pusher/user-auth", "tok-a", formCT, form("socket_id", "1.2"))
	if code != 200 || m["user_data"] != `{"id":"a","user_info":{"name":"N a"}}` ||
		m["auth"] != channels.UserAuth("key", "secret", "1.2", m["user_data"]) {
		t.Fatalf("user-auth: %d %v", code, m)
	}

	for _, tc := range []struct {
		name, path, token, body string
		status                  int
		errCode                 string
	}{
		{"no token", "/pusher/auth", "", form("socket_id", "1.2", "channel_name", "private-user-a"), 401, "invalid_token"},
		{"bad token", "/pusher/auth", "nope", form("socket_id", "1.2", "channel_name", "private-user-a"), 401, "invalid_token"},
		{"another user's channel", "/pusher/auth", "tok-a", form("socket_id", "1.2", "channel_name", "private-user-b"), 403, "forbidden"},
		{"encrypted without the permission", "/pusher/auth", "tok-a", form("socket_id", "1.2", "channel_name", "private-encrypted-v"), 403, "forbidden"},
		{"internal channel", "/pusher/auth", "tok-a", form("socket_id", "1.2", "channel_name", "#server-to-user-a"), 403, "internal_channel"},
		{"bad socket id", "/pusher/auth", "tok-a", form("socket_id", "1:2", "channel_name", "private-user-a"), 400, "invalid_socket_id"},
		{"bad channel", "/pusher/auth", "tok-a", form("socket_id", "1.2", "channel_name", "a b"), 400, "invalid_channel"},
		{"body too large", "/pusher/auth", "tok-a", form("socket_id", "1.2", "channel_name", strings.Repeat("a", 5000)), 400, "invalid_request"},
		{"user-auth without token", "/pusher/user-auth", "", form("socket_id", "1.2"), 401, "invalid_token"},
		{"user-auth bad socket id", "/pusher/user-auth", "tok-a", form("socket_id", ""), 400, "invalid_socket_id"},
	} {
		code, m := do(tc.path, tc.token, formCT, tc.body)
		if code != tc.status || m["error"] != tc.errCode {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, m, tc.status, tc.errCode)
		}
	}
}
