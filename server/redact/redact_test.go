package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/a":                            "https://hooks.example.com/a",
		"https://user:pass@hooks.example.com/path?token=abc&x=1": "https://REDACTED@hooks.example.com/path?token=REDACTED&x=REDACTED",
		"https://user@hooks.example.com/":                        "https://REDACTED@hooks.example.com/",
		"https://hooks.example.com/p?token=abc&token=def":        "https://hooks.example.com/p?token=REDACTED&token=REDACTED",
		"https://hooks.example.com/p?secret":                     "https://hooks.example.com/p?secret=REDACTED",
		"https://hooks.example.com/p#frag-token":                 "https://hooks.example.com/p#REDACTED",
		"redis://:s3cret@redis.internal:6379/0":                  "redis://REDACTED@redis.internal:6379/0",
		"http://127.0.0.1:9/b":                                   "http://127.0.0.1:9/b",
		"https://u:p@host:99999999/x?k=v":                        "https://REDACTED@host:99999999/x?k=REDACTED",
		"https://u:p@exa mple.com/x?token=abc":                   "https://REDACTED@exa mple.com/x?REDACTED", // does not parse
		"://u:p@x?token=abc":                                     "://REDACTED@x?REDACTED",
		"https://hooks.example.com/p?a=%zz&token=abc":            "https://hooks.example.com/p?REDACTED",
		"https://us%zzer:pass@hooks.example.com/":                "https://REDACTED@hooks.example.com/",
		"": "",
	} {
		got := URL(in)
		if got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"pass", "abc", "def", "s3cret", "frag-token"} {
			if strings.Contains(got, secret) {
				t.Errorf("URL(%q) = %q still holds %q", in, got, secret)
			}
		}
	}
}

// net/http names the request URL in its errors, the query in full.
func TestError(t *testing.T) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://user:pw-123@127.0.0.1:1/hook?token=tok-456", nil)
	_, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Fatal("want a dial error")
	}
	if !strings.Contains(err.Error(), "tok-456") {
		t.Fatalf("premise: net/http no longer names the query: %v", err)
	}
	for _, e := range []error{err, fmt.Errorf("deliver: %w", err)} {
		got := Error(e)
		if strings.Contains(got, "tok-456") || strings.Contains(got, "pw-123") || !strings.Contains(got, "127.0.0.1:1/hook?token=REDACTED") {
			t.Fatalf("Error = %q", got)
		}
	}
	if Error(nil) != "" || Error(fmt.Errorf("answered 500")) != "answered 500" {
		t.Fatal("errors without a URL change")
	}
}

// url.Error prints its URL quoted: a query value with a '"' is escaped there, and must
// be redacted all the same.
func TestErrorQuotedURL(t *testing.T) {
	e := fmt.Errorf("webhook: %w", &url.Error{Op: "Post", URL: `https://hooks.example.com/in?token=se"cret\x`, Err: errors.New("connection refused")})
	got := Error(e)
	if strings.Contains(got, "cret") {
		t.Fatalf("query value left in %q", got)
	}
	if !strings.Contains(got, "hooks.example.com/in?token=REDACTED") || !strings.Contains(got, "connection refused") {
		t.Fatalf("lost the host or the cause: %q", got)
	}
}
