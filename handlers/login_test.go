package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/tokens"
)

type fakeUsers struct{}

func (fakeUsers) Authenticate(u, p string) (tokens.User, error) {
	if u == "bob" && p == "bob123" {
		return tokens.User{ID: "2", Name: "Bob"}, nil
	}
	return tokens.User{}, errors.New("no")
}
func (fakeUsers) Exists(u string) bool { return u == "bob" }

type fakeIssuer struct{}

func (fakeIssuer) Issue(u tokens.User) (string, time.Time, error) {
	return "token-of-" + u.ID, time.Now().Add(time.Hour), nil
}

type allowAll struct{}

func (allowAll) Allow(string) (bool, time.Duration) { return true, 0 }

func loginRouter() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/login", Login(fakeUsers{}, fakeIssuer{}, allowAll{}, func(string) {}, slog.New(slog.DiscardHandler)))
	return r
}

func postLogin(t *testing.T, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	loginRouter().ServeHTTP(rec, req)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("answer is not JSON: %q", rec.Body)
	}
	return rec.Code, got
}

func multipartBody(t *testing.T, fields map[string]string, file []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if file != nil {
		fw, err := w.CreateFormFile("upload", "f.bin")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(file)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

// multipart/form-data is an accepted content type, so it must be parsed (it was not:
// every multipart login was "username and password are required").
func TestLoginMultipart(t *testing.T) {
	ct, body := multipartBody(t, map[string]string{"username": "bob", "password": "bob123"}, nil)
	if code, got := postLogin(t, ct, body); code != 200 || got["token"] != "token-of-2" {
		t.Fatalf("multipart login: %d %v", code, got)
	}
	ct, body = multipartBody(t, map[string]string{"username": "bob", "password": "wrong"}, nil)
	if code, got := postLogin(t, ct, body); code != 401 || got["error"] != "invalid_credentials" {
		t.Fatalf("multipart wrong password: %d %v", code, got)
	}
	ct, body = multipartBody(t, map[string]string{"username": "bob"}, nil)
	if code, got := postLogin(t, ct, body); code != 400 || got["error"] != "invalid_request" {
		t.Fatalf("multipart without password: %d %v", code, got)
	}
}

func TestLoginMultipartRefusals(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where multipart would spill files to disk

	ct, big := multipartBody(t, map[string]string{"username": "bob", "password": strings.Repeat("x", 2*maxLoginBody)}, nil)
	if code, got := postLogin(t, ct, big); code != 413 || got["error"] != "too_large" {
		t.Fatalf("oversized multipart: %d %v", code, got)
	}
	ct, withFile := multipartBody(t, map[string]string{"username": "bob", "password": "bob123"}, bytes.Repeat([]byte{1}, 64<<10))
	if code, got := postLogin(t, ct, withFile); code != 413 {
		t.Fatalf("multipart with a 64 KiB file: %d %v", code, got)
	}
	for what, c := range map[string]struct{ ct, body string }{
		"no boundary":    {"multipart/form-data", "--x\r\n\r\n"},
		"wrong boundary": {"multipart/form-data; boundary=zz", "--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n--x--\r\n"},
		"truncated":      {"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob"},
	} {
		if code, got := postLogin(t, c.ct, []byte(c.body)); code != 400 || got["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", what, code, got)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestLoginOtherContentTypes(t *testing.T) {
	if code, got := postLogin(t, "application/x-www-form-urlencoded", []byte("username=bob&password=bob123")); code != 200 {
		t.Fatalf("form login: %d %v", code, got)
	}
	if code, got := postLogin(t, "application/json", []byte(`{"username":"bob","password":"bob123"}`)); code != 200 {
		t.Fatalf("json login: %d %v", code, got)
	}
	code, got := postLogin(t, "text/plain", []byte("x"))
	if msg, _ := got["message"].(string); code != 400 || !strings.Contains(msg, "multipart/form-data") {
		t.Fatalf("text/plain: %d %v", code, got)
	}
}
