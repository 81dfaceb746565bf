// Package floor is the least a server can do under the benchmark's load: the floor this
// machine's kernel sets, against which both real servers are read.
//
// It speaks just enough Engine.IO v3 / socket.io 2 over websockets for the load tool
// (open, CONNECT, connection_established, the subscribe ack, pongs), checks no token
// and no signature, and fans a triggered event out the way a single-threaded server at
// best can: one websocket frame built once, written to each subscriber's socket in a
// plain loop on the request's goroutine. No queue, no per-connection state beyond a
// lock, no JSON but reading the trigger. Node's socket.io does this loop plus its
// JavaScript; Jetsocket does it plus authentication, channels and limits, split over
// the cores. Neither can do less than the kernel's work per write, which is what this
// measures.
package floor

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Serve answers on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener) error {
	s := &server{subs: make(map[*conn]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/socket.io/", s.socket)
	mux.HandleFunc("POST /apps/{app}/events", s.trigger)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		s.closeAll()
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type server struct {
	mu   sync.RWMutex
	subs map[*conn]bool
	n    int
}

type conn struct {
	ws  *websocket.Conn
	net net.Conn
	mu  sync.Mutex // one frame at a time
}

func (c *conn) text(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *server) socket(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, net: ws.UnderlyingConn()}
	s.mu.Lock()
	s.n++
	id := strconv.Itoa(s.n)
	s.mu.Unlock()
	for _, m := range []string{
		`0{"sid":"` + id + `","upgrades":[],"pingInterval":25000,"pingTimeout":60000}`,
		`40`,
		`42["jetsocket:connection_established",{"socket_id":"1.` + id + `","user_id":"` + id + `"}]`,
	} {
		if c.text(m) != nil {
			ws.Close()
			return
		}
	}
	defer func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
		ws.Close()
	}()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		switch {
		case string(msg) == "2":
			err = c.text("3")
		case len(msg) > 2 && msg[0] == '4' && msg[1] == '2':
			// 42<id>["jetsocket:subscribe",{"channel":...}]: every subscribe succeeds.
			i := 2
			for i < len(msg) && msg[i] >= '0' && msg[i] <= '9' {
				i++
			}
			s.mu.Lock()
			s.subs[c] = true
			s.mu.Unlock()
			if i > 2 {
				err = c.text(`43` + string(msg[2:i]) + `[{"ok":true}]`)
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *server) trigger(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		Name    string `json:"name"`
		Channel string `json:"channel"`
		Data    string `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name, _ := json.Marshal(ev.Name)
	channel, _ := json.Marshal(ev.Channel)
	data := []byte(ev.Data)
	if !json.Valid(data) {
		data, _ = json.Marshal(ev.Data)
	}
	payload := append([]byte(`42[`), name...)
	payload = append(payload, `,{"channel":`...)
	payload = append(payload, channel...)
	payload = append(payload, `,"data":`...)
	payload = append(payload, data...)
	payload = append(payload, `}]`...)
	frame := wsFrame(payload)

	s.mu.RLock()
	subs := make([]*conn, 0, len(s.subs))
	for c := range s.subs {
		subs = append(subs, c)
	}
	s.mu.RUnlock()
	for _, c := range subs {
		c.mu.Lock()
		_, _ = c.net.Write(frame)
		c.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

// wsFrame is an unmasked text frame carrying p.
func wsFrame(p []byte) []byte {
	f := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		f = append(f, byte(n))
	case n <= 0xffff:
		f = append(f, 126, byte(n>>8), byte(n))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, p...)
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.subs {
		c.ws.Close()
	}
}
