package load

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeCentrifugo speaks the part of Centrifugo's JSON protocol the load tool uses: a
// connect command with a token, subscribe commands, an empty-object ping that must be
// answered, and publications from POST /api/publish with the API key.
type fakeCentrifugo struct {
	mu     sync.Mutex
	subs   []*websocket.Conn
	pongs  int
	tokens []string
}

func (f *fakeCentrifugo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/connection/websocket":
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.serveWS(ws)
	case "/api/publish":
		if r.Header.Get("X-API-Key") != "key" {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		var cmd struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &cmd) != nil || cmd.Channel != "bench" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		push := []byte(`{"push":{"channel":"bench","pub":{"data":` + string(cmd.Data) + `}}}`)
		f.mu.Lock()
		for _, ws := range f.subs {
			_ = ws.WriteMessage(websocket.TextMessage, push)
		}
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"result":{}}`))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeCentrifugo) serveWS(ws *websocket.Conn) {
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if bytes.Equal(msg, []byte("{}")) {
			f.mu.Lock()
			f.pongs++
			f.mu.Unlock()
			continue
		}
		var cmd struct {
			ID        int `json:"id"`
			Connect   *struct{ Token string }
			Subscribe *struct{ Channel string }
		}
		if json.Unmarshal(msg, &cmd) != nil {
			return
		}
		f.mu.Lock()
		switch {
		case cmd.Connect != nil:
			f.tokens = append(f.tokens, cmd.Connect.Token)
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":`+strconv.Itoa(cmd.ID)+`,"connect":{"client":"x","ping":25,"pong":true}}`))
		case cmd.Subscribe != nil && cmd.Subscribe.Channel == "bench":
			f.subs = append(f.subs, ws)
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":`+strconv.Itoa(cmd.ID)+`,"subscribe":{}}`))
			// Pings (Centrifugo's empty object) the client must answer: one alone, one
			// batched with a reply in one frame, as the server writes under load.
			_ = ws.WriteMessage(websocket.TextMessage, []byte("{}"))
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":999,"rpc":{}}`+"\n{}"))
		default:
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":`+strconv.Itoa(cmd.ID)+`,"error":{"code":103,"message":"permission denied"}}`))
		}
		f.mu.Unlock()
	}
}

// The Centrifugo mode connects with the token, subscribes, answers pings and counts
// every publication from the server API exactly once.
func TestRunCentrifugo(t *testing.T) {
	f := &fakeCentrifugo{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	res, err := Run(context.Background(), Target{
		Name: "fake", URL: u, Key: "key",
		Token: func(i int) (string, error) { return "tok" + strconv.Itoa(i), nil },
	}, Config{N: 5, LatencyEvents: 3, BurstEvents: 3, Settle: time.Millisecond, Handshake: Handshake{Protocol: ProtocolCentrifugo}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Client != "centrifugo" || res.Connected != 5 || res.Subscribed != 5 || res.Delivered != 30 || res.Lost() != 0 || res.Duplicates != 0 || res.TriggerFailures != 0 {
		t.Fatalf("result %+v", res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) != 5 || f.tokens[0] == "" {
		t.Fatalf("tokens %v", f.tokens)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.pongs < 10 && time.Now().Before(deadline) {
		f.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		f.mu.Lock()
	}
	if f.pongs < 10 {
		t.Fatalf("%d pongs for 10 pings", f.pongs)
	}
}
