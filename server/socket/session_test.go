package socket

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/socket/eio3"
	"github.com/jetsocket/jetsocket/server/socket/eio4"
)

// Both engines' sessions are Sessions (eio4's structurally, without importing this
// package).
var (
	_ Session = (*eio4.Session)(nil)
	_ Session = (*eio3.Session)(nil)
)

// The client address the HTTP layer resolved reaches the connection from the request,
// on both engines and both transports, and so does the handshake's transport; nothing
// in the URL carries them.
func TestSessionValuesComeFromTheHandshakeRequest(t *testing.T) {
	ts := newTestServer(t, Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.ServeHTTP(w, WithClientIP(r, "203.0.113.9"))
	}))
	t.Cleanup(hs.Close)
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http")

	res, err := http.Get(hs.URL + "/?EIO=3&transport=polling&b64=1&token=v3poll&jetsocket_client_ip=6.6.6.6")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(res.Body)
	res.Body.Close()
	check := func(user, transport string) {
		t.Helper()
		c := ts.conn(t, user)
		if c.IP() != "203.0.113.9" || c.sess.Transport() != transport || c.sess.Token() != user {
			t.Fatalf("%s: ip %q, transport %q, token %q", user, c.IP(), c.sess.Transport(), c.sess.Token())
		}
	}
	check("v3poll", "polling")

	ws3, _, err := websocket.DefaultDialer.Dial(wsURL+"/?EIO=3&transport=websocket&token=v3ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws3.Close()
	check("v3ws", "websocket")
	if c := ts.conn(t, "v3ws"); c.v5 || c.sess.WebSocket() == nil || !c.sess.WebSocket().Direct() {
		t.Fatal("a v3 websocket connection is not protocol 4 on a direct websocket")
	}

	ws4, _, err := websocket.DefaultDialer.Dial(wsURL+"/?EIO=4&transport=websocket&token=v4ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws4.Close()
	if _, _, err := ws4.ReadMessage(); err != nil { // OPEN
		t.Fatal(err)
	}
	if err := ws4.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	check("v4ws", "websocket")
	if c := ts.conn(t, "v4ws"); !c.v5 || c.sess.WebSocket() == nil {
		t.Fatal("a v4 websocket connection is not protocol 5 on a direct websocket")
	}
}
