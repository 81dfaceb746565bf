package middleware

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/tokens"
)

func TestBearer(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	tm, err := tokens.NewManager(tokens.Config{Secret: []byte("0123456789abcdef0123456789abcdef"), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	good, _, _ := tm.Issue(tokens.User{ID: "7", Name: "Seven"})
	other, _ := tokens.NewManager(tokens.Config{Secret: []byte("another-secret-of-32-bytes-000000"), TTL: time.Hour})
	forged, _, _ := other.Issue(tokens.User{ID: "7"})

	r := gin.New()
	r.GET("/me", Bearer(tm, slog.New(slog.DiscardHandler)), func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"user_id": ClaimsOf(c).UserID()})
	})
	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"valid", "Bearer " + good, 200},
		// The scheme is case-insensitive (RFC 9110 §11.1).
		{"scheme in capitals", "BEARER " + good, 200},
		{"scheme mixed case", "bEaReR " + good, 200},
		{"no header", "", 401},
		{"not bearer", "Basic " + good, 401},
		{"empty token", "Bearer ", 401},
		{"garbage", "Bearer not.a.jwt", 401},
		{"wrong key", "Bearer " + forged, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/me", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if tc.status == 200 {
				if body["user_id"] != "7" {
					t.Fatalf("claims not on the request: %v", body)
				}
				return
			}
			if body["error"] != "invalid_token" || body["message"] == "" || w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("refusal %v %v", body, w.Header())
			}
		})
	}
}
