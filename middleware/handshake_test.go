package middleware

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

// Handshake asks Admit with the client address gin resolved (TRUSTED_PROXIES): behind a
// trusted proxy, the one the proxy names, not the proxy's; a refusal is answered as it is.
func TestHandshakeAdmitsTheResolvedAddress(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	tm, err := tokens.NewManager(tokens.Config{Secret: []byte("0123456789abcdef0123456789abcdef"), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := tm.Issue(tokens.User{ID: "7"})
	var gotIP, gotUser string
	r := gin.New()
	if err := r.SetTrustedProxies([]string{"10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	r.GET("/socket.io/", Handshake(HandshakeOptions{
		Verifier: tm,
		Admit: func(claims *tokens.Claims, ip string) error {
			gotIP, gotUser = ip, claims.UserID()
			if ip == "198.51.100.9" {
				return errs.New(errs.RateLimited, errs.CodeTooManyConnections, "this address has too many open connections")
			}
			return nil
		},
		Log: slog.New(slog.DiscardHandler),
	}), func(c *gin.Context) { c.Status(http.StatusNoContent) })

	for _, tc := range []struct {
		name, peer, forwarded, wantIP string
		status                        int
	}{
		{"direct", "192.0.2.5:4000", "", "192.0.2.5", http.StatusNoContent},
		{"behind the trusted proxy", "10.0.0.1:4000", "203.0.113.7", "203.0.113.7", http.StatusNoContent},
		{"an untrusted peer's header is ignored", "192.0.2.6:4000", "203.0.113.8", "192.0.2.6", http.StatusNoContent},
		{"refused", "10.0.0.1:4000", "198.51.100.9", "198.51.100.9", http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotIP, gotUser = "", ""
			req := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3&transport=polling&token="+tok, nil)
			req.RemoteAddr = tc.peer
			if tc.forwarded != "" {
				req.Header.Set("X-Forwarded-For", tc.forwarded)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if gotIP != tc.wantIP || gotUser != "7" {
				t.Fatalf("Admit asked for user %q at %q, want 7 at %q", gotUser, gotIP, tc.wantIP)
			}
			if tc.status != http.StatusTooManyRequests {
				return
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != errs.CodeTooManyConnections {
				t.Fatalf("refusal body %q (%v)", w.Body, err)
			}
		})
	}
}
