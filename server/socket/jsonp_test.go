package socket

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// JSONP polling served a caller-named function call as text/javascript from our origin.
// It is refused on the handshake and on an open session; the session and other clients
// are unaffected.
func TestJSONPIsRefused(t *testing.T) {
	ts := newTestServer(t, Options{})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(q string) (*http.Response, string) {
		t.Helper()
		res, err := client.Get(ts.url + "/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	refused := func(what string, res *http.Response, body string) {
		t.Helper()
		var e struct{ Error, Message string }
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(body), &e) != nil || e.Error != "jsonp_not_supported" {
			t.Fatalf("%s: %d %s %q", what, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		if strings.Contains(body, "alert") {
			t.Fatalf("%s: the callback name is echoed: %q", what, body)
		}
	}

	res, body := get("EIO=3&transport=polling&token=jp&j=alert(1)")
	refused("JSONP handshake", res, body)
	res, body = get("EIO=3&transport=polling&token=jp&j=")
	refused("JSONP handshake, empty j", res, body)

	// A normal polling session, then a JSONP poll on it.
	res, body = get("EIO=3&transport=polling&token=poller")
	m := sidInOpen.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("handshake: %d %q", res.StatusCode, body)
	}
	sid := m[1]
	res, body = get("EIO=3&transport=polling&sid=" + sid + "&j=alert(1)")
	refused("JSONP poll", res, body)
	res, body = get("EIO=3&transport=polling&sid=" + sid)
	if res.StatusCode != 200 || strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("the session's next XHR poll: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	ts.dialWS(t, "healthy") // and others connect as before
}
