package apisig

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/errs"
)

// The worked example of Pusher's documentation on HTTP API authentication.
func TestPusherWorkedExample(t *testing.T) {
	const key, secret = "278d425bdf160c739803", "7ad3773142a6692b25b8"
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	if got := BodyMD5(body); got != "ec365a775a4cd0599faeb73354201b6f" {
		t.Fatalf("body_md5 = %s", got)
	}
	q := url.Values{"auth_key": {key}, "auth_timestamp": {"1353088179"}, "auth_version": {"1.0"}, "body_md5": {"ec365a775a4cd0599faeb73354201b6f"}}
	s := StringToSign("POST", "/apps/3/events", q)
	if s != "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f" {
		t.Fatalf("string to sign:\n%s", s)
	}
	if got := Sign(secret, s); got != "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c" {
		t.Fatalf("signature = %s", got)
	}
	q.Set("auth_signature", "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c")
	if err := Verify("POST", "/apps/3/events", q, body, key, secret, time.Unix(1353088179+30, 0)); err != nil {
		t.Fatalf("worked example refused: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	const key, secret = "app-key", "app-secret-0123456789"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"name":"e","channel":"c","data":"x"}`)
	signed := func(mod func(q url.Values)) url.Values {
		q := url.Values{"info": {"user_count"}}
		SignQuery("POST", "/apps/1/events", q, body, key, secret, now)
		if mod != nil {
			mod(q)
		}
		return q
	}
	if err := Verify("POST", "/apps/1/events", signed(nil), body, key, secret, now); err != nil {
		t.Fatalf("good request refused: %v", err)
	}
	tests := map[string]struct {
		q      url.Values
		method string
		path   string
		body   []byte
		secret string
		now    time.Time
		want   string
	}{
		"wrong secret":           {q: signed(nil), secret: "another-secret", want: "auth_signature"},
		"tampered param":         {q: signed(func(q url.Values) { q.Set("info", "subscription_count") }), want: "auth_signature"},
		"added param":            {q: signed(func(q url.Values) { q.Set("socket_id", "1.2") }), want: "auth_signature"},
		"other path":             {q: signed(nil), path: "/apps/2/events", want: "auth_signature"},
		"other method":           {q: signed(nil), method: "GET", want: "auth_signature"},
		"tampered body":          {q: signed(nil), body: []byte(`{"name":"e","channel":"d","data":"x"}`), want: "body_md5"},
		"no body_md5":            {q: signed(func(q url.Values) { q.Del("body_md5") }), want: "body_md5"},
		"old timestamp":          {q: signed(nil), now: now.Add(601 * time.Second), want: "600 seconds"},
		"future timestamp":       {q: signed(nil), now: now.Add(-601 * time.Second), want: "600 seconds"},
		"wrong key":              {q: signed(func(q url.Values) { q.Set("auth_key", "nope") }), want: "auth_key"},
		"no signature":           {q: signed(func(q url.Values) { q.Del("auth_signature") }), want: "auth_signature"},
		"bad version":            {q: signed(func(q url.Values) { q.Set("auth_version", "2.0") }), want: "auth_version"},
		"timestamp not a number": {q: signed(func(q url.Values) { q.Set("auth_timestamp", "soon") }), want: "auth_timestamp"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			method, path, b, sec, at := "POST", "/apps/1/events", body, secret, now
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				path = tt.path
			}
			if tt.body != nil {
				b = tt.body
			}
			if tt.secret != "" {
				sec = tt.secret
			}
			if !tt.now.IsZero() {
				at = tt.now
			}
			err := Verify(method, path, tt.q, b, key, sec, at)
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Unauthorized || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("got %v, want Unauthorized mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), Sign(sec, StringToSign(method, path, tt.q))) {
				t.Fatal("error leaks the expected signature")
			}
		})
	}
}

func FuzzVerifyNeverPanics(f *testing.F) {
	f.Add("auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=00", []byte("{}"))
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		_ = Verify("POST", "/apps/1/events", q, body, "k", "s", time.Unix(1, 0))
	})
}
