package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jetsocket/jetsocket/server/webhook"
	"github.com/jetsocket/jetsocket/tokens"
)

// A token that expires closes its connection with jetsocket:token_expired; a
// connection that refreshed in time stays.
func TestTokenExpiryAndRefresh(t *testing.T) {
	ts := startServer(t, map[string]string{"JWT_LEEWAY": "0s"})
	// Tokens are minted here with short lives: logins (bcrypt) are slow under -race.
	mint := func(user string, ttl time.Duration) string {
		m, err := tokens.NewManager(tokens.Config{Secret: []byte(testSecret), TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := m.Issue(tokens.User{ID: user, Name: user})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	stale, _, err := ts.dial(t, mint("1", 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stale.established()
	fresh, _, err := ts.dial(t, mint("1", 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fresh.established()

	if res := fresh.ack(1, "jetsocket:refresh", map[string]string{"token": mint("2", time.Hour)}); res["ok"] != false || res["code"] != "forbidden" {
		t.Fatalf("refresh with another user's token: %v", res)
	}
	if res := fresh.ack(2, "jetsocket:refresh", map[string]string{"token": "garbage"}); res["ok"] != false || res["code"] != "invalid_token" {
		t.Fatalf("refresh with garbage: %v", res)
	}
	res := fresh.ack(3, "jetsocket:refresh", map[string]string{"token": mint("1", 5*time.Second)})
	if res["ok"] != true || res["expires_at"] == nil {
		t.Fatalf("refresh: %v", res)
	}

	ev := stale.event("jetsocket:token_expired")
	if ev["expired_at"] == nil {
		t.Fatalf("token_expired payload %v", ev)
	}
	_ = stale.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := stale.ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("expired connection not closed")
			}
			break
		}
	}
	// The refreshed connection outlives the first token.
	fresh.send(`29["jetsocket:ping"]`)
	if p := fresh.next(); !strings.HasPrefix(p, "39[") {
		t.Fatalf("refreshed connection: %q", p)
	}
	// ...and expires with the second one.
	fresh.event("jetsocket:token_expired")
}

// webhookSink records verified webhook events.
type webhookSink struct {
	mu     sync.Mutex
	events []webhook.Event
	bad    int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := webhook.Verify(r, "hook-key", "hook-secret-0123456789")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.events = append(s.events, p.Events...)
}

func (s *webhookSink) names() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		n := e.Name
		if e.UserID != "" {
			n += ":" + e.UserID
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// The webhooks of a presence channel's life, signed, one member event per user however
// many connections the user has.
func TestWebhooksOfAPresenceChannel(t *testing.T) {
	sink := &webhookSink{}
	hooks := httptest.NewServer(sink)
	defer hooks.Close()
	ts := startServer(t, map[string]string{"WEBHOOK_URL": hooks.URL, "APP_KEY": "hook-key", "APP_SECRET": "hook-secret-0123456789"})

	aliceToken := ts.login(t, "alice", "alice123")
	var conns []*wsClient
	for _, tok := range []string{aliceToken, aliceToken, ts.login(t, "bob", "bob123")} {
		c, _, err := ts.dial(t, tok)
		if err != nil {
			t.Fatal(err)
		}
		c.established()
		if res := c.ack(1, "jetsocket:subscribe", map[string]string{"channel": "presence-room"}); res["ok"] != true {
			t.Fatalf("subscribe: %v", res)
		}
		conns = append(conns, c)
	}
	if res := conns[2].ack(2, "client-typing", map[string]any{"channel": "presence-room", "data": map[string]bool{"on": true}}); res["ok"] != true {
		t.Fatalf("client event: %v", res)
	}
	for i, c := range conns {
		if res := c.ack(3+i, "jetsocket:unsubscribe", map[string]string{"channel": "presence-room"}); res["ok"] != true {
			t.Fatalf("unsubscribe: %v", res)
		}
	}
	want := "channel_occupied member_added:1 member_added:2 client_event:2 member_removed:1 member_removed:2 channel_vacated"
	if !eventually(func() bool { return sink.names() == want }) {
		t.Fatalf("webhooks:\n got %s\nwant %s", sink.names(), want)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	ce := sink.events[3]
	if ce.Event != "client-typing" || ce.Data != `{"on":true}` || ce.SocketID == "" || sink.bad != 0 {
		t.Fatalf("client_event webhook %+v (bad signatures: %d)", ce, sink.bad)
	}
}

func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	res, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestMetricsMove(t *testing.T) {
	ts := startServer(t, nil)
	before := scrape(t, ts)
	if _, ok := before["jetsocket_connections"]; !ok {
		t.Fatalf("no jetsocket_connections in %v", before)
	}
	_, _, _ = ts.dial(t, "bad-token")
	c, _, err := ts.dial(t, ts.login(t, "bob", "bob123"))
	if err != nil {
		t.Fatal(err)
	}
	c.established()
	c.ack(1, "jetsocket:subscribe", map[string]string{"channel": "presence-lobby"})
	c.ack(2, "jetsocket:subscribe", map[string]string{"channel": "private-nope"})
	after := scrape(t, ts)
	checks := map[string]float64{
		"jetsocket_connections":                             1,
		"jetsocket_auth_failures_total{reason=malformed}":   1,
		"jetsocket_subscriptions{type=presence}":            1,
		"jetsocket_subscribe_refused_total{code=forbidden}": 1,
		"jetsocket_logins_total{outcome=ok}":                1,
		"jetsocket_messages_in_total{kind=subscribe}":       2,
	}
	for k, want := range checks {
		if got := after[k] - before[k]; got != want {
			t.Errorf("%s moved by %v, want %v", k, got, want)
		}
	}
}

func TestConnectionsPerUserLimit(t *testing.T) {
	ts := startServer(t, map[string]string{"MAX_CONNECTIONS_PER_USER": "2"})
	tok := ts.login(t, "carol", "carol123")
	for range 2 {
		c, _, err := ts.dial(t, tok)
		if err != nil {
			t.Fatal(err)
		}
		c.established()
	}
	_, res, err := ts.dial(t, tok)
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v %v", res, err)
	}
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	if body["error"] != "too_many_connections" {
		t.Fatalf("body %v", body)
	}
	other, _, err := ts.dial(t, ts.login(t, "bob", "bob123"))
	if err != nil {
		t.Fatalf("another user refused: %v", err)
	}
	other.established()
}

// writeCert makes a self-signed certificate for 127.0.0.1 and returns its files and pool.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jetsocket test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	ts := startServer(t, map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get("https://" + ts.host + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("https healthz: %v %v", res, err)
	}
	res.Body.Close()
	res, err = client.Post("https://"+ts.host+"/login", "application/json", strings.NewReader(`{"username":"bob","password":"bob123"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Token string }
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ws, _, err := d.Dial("wss://"+ts.host+"/socket.io/?EIO=3&transport=websocket&token="+body.Token, nil)
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	defer ws.Close()
	c := &wsClient{t: t, ws: ws}
	if est := c.established(); est["user_id"] != "2" {
		t.Fatalf("over wss: %v", est)
	}
	if res, err := http.Get("http://" + ts.host + "/healthz"); err == nil && res.StatusCode == 200 {
		t.Fatal("plain http served on the TLS port")
	}
}
