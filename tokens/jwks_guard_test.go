package tokens

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A key set is fetched only from JWKS_URL's scheme and host: a redirect elsewhere is a
// failed fetch (whoever answers there would choose the keys); a same-origin redirect is
// followed, a few times at most.
func TestJWKSRedirects(t *testing.T) {
	k := genKeys(t)
	p := newProvider(t, pubKey{"rsa", "RS256", &k.rsa.PublicKey})
	tok := signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", idpClaims(time.Now()))
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		p.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(other.Close)
	tlsOther := httptest.NewTLSServer(other.Config.Handler)
	t.Cleanup(tlsOther.Close)
	// The same server under another host name: only the name differs.
	sameServerOtherName := strings.Replace(p.srv.URL, "127.0.0.1", "localhost", 1)

	redirector := func(to func(r *http.Request) string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/keys" {
				p.srv.Config.Handler.ServeHTTP(w, r)
				return
			}
			http.Redirect(w, r, to(r), http.StatusFound)
		}))
		t.Cleanup(s.Close)
		return s
	}
	cases := []struct {
		name   string
		to     func(r *http.Request) string
		client func() *http.Client
		ok     bool
	}{
		{"same scheme and host", func(*http.Request) string { return "/keys" }, nil, true},
		{"another host", func(*http.Request) string { return other.URL + "/keys" }, nil, false},
		{"another host name of the same server", func(*http.Request) string { return sameServerOtherName + "/keys" }, nil, false},
		{"another scheme", func(*http.Request) string { return tlsOther.URL + "/keys" }, tlsOther.Client, false},
		{"a loop", func(r *http.Request) string { return r.URL.Path + "x" }, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			elsewhere.Store(0)
			r := redirector(c.to)
			var fetchErr atomic.Value
			ks := newKeySet(t, r.URL+"/jwks.json", func(o *KeySetOptions) {
				if c.client != nil {
					o.Client = c.client()
				}
				o.OnFetch = func(err error, _ int) {
					if err != nil {
						fetchErr.Store(err.Error())
					}
				}
			})
			_, verr := newJWKSManager(t, ks, nil).Verify(tok)
			if c.ok {
				if ks.Ready() != nil || verr != nil {
					t.Fatalf("same-origin redirect not followed: ready %v, verify %v", ks.Ready(), verr)
				}
				return
			}
			if ks.Ready() == nil || verr == nil {
				t.Fatal("keys loaded through a refused redirect")
			}
			if elsewhere.Load() != 0 {
				t.Fatal("the other origin was asked")
			}
			if msg, _ := fetchErr.Load().(string); !strings.Contains(msg, "redirect") {
				t.Fatalf("fetch error %q does not say why", msg)
			}
		})
	}
}

// An answer over MaxJWKSBytes is a failed fetch, whether it says so (Content-Length) or
// not (chunked), and the cached keys stay.
func TestJWKSAnswerSizeIsBounded(t *testing.T) {
	k := genKeys(t)
	p := newProvider(t, pubKey{"rsa", "RS256", &k.rsa.PublicKey})
	var huge atomic.Int32 // 0: the keys, 1: huge with Content-Length, 2: huge chunked
	var served atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := huge.Load()
		if mode == 0 {
			p.srv.Config.Handler.ServeHTTP(w, r)
			return
		}
		// A valid JSON object that never ends within the limit: whitespace after "{".
		body := "{" + strings.Repeat(" ", 4*MaxJWKSBytes) + `"keys":[]}`
		if mode == 2 {
			w.Header().Set("Content-Type", "application/json")
			for i := 0; i < len(body); i += 64 << 10 {
				n, err := w.Write([]byte(body[i:min(i+64<<10, len(body))]))
				served.Add(int64(n))
				if err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", "4194315")
		n, _ := w.Write([]byte(body))
		served.Add(int64(n))
	}))
	t.Cleanup(s.Close)
	tok := signKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", idpClaims(time.Now()))
	ks := newKeySet(t, s.URL, nil)
	m := newJWKSManager(t, ks, nil)
	if _, err := m.Verify(tok); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []int32{1, 2} {
		huge.Store(mode)
		err := ks.Refresh(context.Background())
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("mode %d: refresh of a huge answer: %v", mode, err)
		}
		if _, err := m.Verify(tok); err != nil {
			t.Fatalf("mode %d: cached key dropped: %v", mode, err)
		}
	}
}
