package socket

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsURL is ts's Engine.IO v3 websocket URL with extra query parameters.
func (ts *testServer) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(ts.url, "http") + "/?EIO=3&transport=websocket&" + query
}

// openSID reads a session's OPEN packet from ws and returns its sid.
func openSID(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m := sidInOpen.FindSubmatch(msg); msg[0] == '0' && m != nil {
			return string(m[1])
		}
	}
}

// readUntil reads ws until a frame equal to want, or fails.
func readUntil(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if string(msg) == want {
			return
		}
	}
}

// assertRefused checks a JSON 400 with an error code.
func assertRefused(t *testing.T, what string, status int, contentType string, body []byte) {
	t.Helper()
	var e struct{ Error, Message string }
	if status != http.StatusBadRequest || !strings.HasPrefix(contentType, "application/json") || json.Unmarshal(body, &e) != nil || e.Error == "" || e.Message == "" {
		t.Fatalf("%s: got %d %q %s, want 400 JSON {error, message}", what, status, contentType, body)
	}
}

// A polling request for a session that is on a websocket reaches go-socket.io as an
// "upgrade" to polling: it accepts a polling conn, parks the request, and waits with a
// goroutine of its own for a probe that never comes, for PingTimeout (60 s), for every
// such request. It is refused at once instead, and the session is unharmed.
func TestPollingOnAWebsocketSessionIsRefused(t *testing.T) {
	ts := newTestServer(t, Options{})
	ws, _, err := websocket.DefaultDialer.Dial(ts.wsURL("token=w"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sid := openSID(t, ws)

	// The client timeout only tells a hang from an answer; before the fix this waited
	// for the library's 60 s.
	client := &http.Client{Timeout: 10 * time.Second}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, ts.url+"/?EIO=3&transport=polling&sid="+sid, strings.NewReader("1:2"))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s polling on a websocket session: %v", method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertRefused(t, method+" polling on a websocket session", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	if err := ws.WriteMessage(websocket.TextMessage, []byte("2x")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, ws, "3x")
}

// go-socket.io runs every websocket upgrade of a session at once: two websockets on one
// polling sid both get the probe answered, both pause the polling conn, and the first to
// finish is orphaned by the second (never read, never closed by the server). One upgrade
// at a time: a second websocket while one is pending is refused.
func TestSecondUpgradeOfOneSessionIsRefused(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp, err := http.Get(ts.url + "/?EIO=3&transport=polling&b64=1&token=p")
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := sidInOpen.FindSubmatch(open)
	if m == nil {
		t.Fatalf("no sid in %q", open)
	}
	sid := string(m[1])

	first, _, err := websocket.DefaultDialer.Dial(ts.wsURL("sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, resp, err := websocket.DefaultDialer.Dial(ts.wsURL("sid="+sid), nil)
	if err == nil {
		second.Close()
		t.Fatal("a second websocket upgrade of one session was accepted")
	}
	if resp == nil {
		t.Fatalf("second upgrade: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertRefused(t, "second upgrade", resp.StatusCode, resp.Header.Get("Content-Type"), body)

	// The first upgrade completes and carries the session.
	if err := first.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, first, "3probe")
	if err := first.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	c := ts.conn(t, "p")
	c.Emit("after-upgrade", 1)
	readUntil(t, first, `42["after-upgrade",1]`)
}

// An upgrade that failed frees its session for another attempt.
func TestUpgradeMayBeRetriedAfterAFailedOne(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp, err := http.Get(ts.url + "/?EIO=3&transport=polling&b64=1&token=r")
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sid := string(sidInOpen.FindSubmatch(open)[1])

	failed, _, err := websocket.DefaultDialer.Dial(ts.wsURL("sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Not a probe: the library closes this websocket and keeps the session on polling.
	if err := failed.WriteMessage(websocket.TextMessage, []byte("4garbage")); err != nil {
		t.Fatal(err)
	}
	_ = failed.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := failed.ReadMessage(); err != nil {
			break
		}
	}
	failed.Close()

	deadline := time.Now().Add(5 * time.Second)
	for {
		retry, _, err := websocket.DefaultDialer.Dial(ts.wsURL("sid="+sid), nil)
		if err == nil {
			defer retry.Close()
			if err := retry.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
				t.Fatal(err)
			}
			readUntil(t, retry, "3probe")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry after a failed upgrade: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// go-socket.io's polling payload keeps the first decoding error for ever: after a "b4"
// message whose base64 is bad, every later GET of the session delivered its packets with
// the error text appended (a payload no client can parse) and every POST was answered
// 400 after its packets had been handled, until the ping timeout. A frame that cannot be
// read ends the session instead.
func TestBadBase64OverPollingEndsTheSession(t *testing.T) {
	ts := newTestServer(t, Options{})
	base := ts.url + "/?EIO=3&transport=polling&b64=1"
	resp, err := http.Get(base + "&token=b")
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sid := string(sidInOpen.FindSubmatch(open)[1])
	ts.conn(t, "b")

	client := &http.Client{Timeout: 10 * time.Second}
	post, err := client.Post(base+"&sid="+sid, "text/plain;charset=UTF-8", strings.NewReader("10:b4!!!!@@@@"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST of bad base64: %d", post.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		get, err := client.Get(base + "&sid=" + sid)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(get.Body)
		get.Body.Close()
		if get.StatusCode == http.StatusBadRequest && strings.Contains(string(body), `"invalid_sid"`) {
			return
		}
		if strings.Contains(string(body), "illegal base64") {
			t.Fatalf("the session lives on with its decoding error in every poll: %d %q", get.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still open: %d %q", get.StatusCode, body)
		}
	}
}

// A frame too large to drain closes the connection, and the client, still sending when
// the server stops reading, must get the frame_too_large error before the end of the
// stream: a plain close would answer the unread bytes with a reset, and a reset makes
// the client's kernel drop the error frame it had received but not yet read.
func TestHugeFrameErrorSurvivesTheClose(t *testing.T) {
	ts := newTestServer(t, Options{})
	ws := ts.dialWS(t, "huge")
	big := `42["x","` + strings.Repeat("x", 3<<20) + `"]`
	// The client writes the whole frame before it reads anything, as a browser does.
	if err := ws.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatalf("writing the frame: %v (the server reset the connection)", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("connection ended without frame_too_large: %v", err)
		}
		if strings.Contains(string(msg), `"`+CodeFrameTooLarge+`"`) {
			break
		}
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("connection still open after a frame over the drain limit")
	}
	ts.dialWS(t, "next") // others are served
}
