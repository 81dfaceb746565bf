// Package floor is the least a server can do under the benchmark's load: the floor this
// machine's kernel sets, against which both real servers are read.
//
// It speaks just enough of both generations over websockets for the load tool:
// Engine.IO v3 / socket.io protocol 4 (open, CONNECT, connection_established, the
// subscribe ack, pongs) and Engine.IO v4 / protocol 5 (open, the client's CONNECT
// answered with `40{"sid"}` or refused when it brings no token at all, connection_established,
// the subscribe ack, server pings whose pongs must come within pingTimeout), checks no token
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

// Options tune the Engine.IO v4 heartbeat; zero values take socket.io's defaults.
type Options struct {
	PingInterval time.Duration // how often the server pings a v4 client (25 s)
	PingTimeout  time.Duration // how long it waits for the pong before closing (20 s)
}

// Serve answers on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener) error { return ServeWith(ctx, ln, Options{}) }

// ServeWith is Serve with opts.
func ServeWith(ctx context.Context, ln net.Listener, opts Options) error {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 20 * time.Second
	}
	s := &server{subs: make(map[*conn]bool), opts: opts}
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
	opts Options
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
	if r.URL.Query().Get("EIO") == "4" {
		s.socketV4(c, id, r.URL.Query().Get("token"))
		return
	}
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

// socketV4 serves an Engine.IO v4 client: the client sends CONNECT, the server pings.
func (s *server) socketV4(c *conn, id, queryToken string) {
	ws := c.ws
	defer func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
		ws.Close()
	}()
	open := `0{"sid":"` + id + `","upgrades":[],"pingInterval":` + strconv.Itoa(int(s.opts.PingInterval.Milliseconds())) +
		`,"pingTimeout":` + strconv.Itoa(int(s.opts.PingTimeout.Milliseconds())) + `,"maxPayload":1000000}`
	if c.text(open) != nil {
		return
	}
	// The read deadline is the heartbeat: every pong (or any other frame) must come
	// within pingInterval + pingTimeout of the last, or the connection is closed.
	alive := func() { _ = ws.SetReadDeadline(time.Now().Add(s.opts.PingInterval + s.opts.PingTimeout)) }
	alive()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(s.opts.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if c.text("2") != nil {
					return
				}
			}
		}
	}()
	connected := false
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		alive()
		switch {
		case string(msg) == "3":
		case !connected && len(msg) >= 2 && msg[0] == '4' && msg[1] == '0':
			var auth struct {
				Token string `json:"token"`
			}
			if len(msg) > 2 {
				_ = json.Unmarshal(msg[2:], &auth)
			}
			if auth.Token == "" && queryToken == "" {
				err = c.text(`44{"message":"invalid_token","data":{"status":401,"reason":"no token"}}`)
				if err == nil {
					err = errors.New("refused")
				}
				break
			}
			connected = true
			err = c.text(`40{"sid":"` + id + `"}`)
			if err == nil {
				err = c.text(`42["jetsocket:connection_established",{"socket_id":"1.` + id + `","user_id":"` + id + `"}]`)
			}
		case connected && len(msg) > 2 && msg[0] == '4' && msg[1] == '2':
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
