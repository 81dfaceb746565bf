//go:build ignore

// Package sio is a minimal socket.io protocol v5 layer (socket.io-client 3.x/4.x) for the
// engine evaluation of issue 17. Both candidate engines drive the same code through Engine,
// so what differs between the two servers is the engine alone.
package sio

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/jetsocket/jetsocket/tokens"
)

// Engine is one Engine.IO session as the socket.io layer sees it.
type Engine interface {
	Send(packet string) // one socket.io packet, sent as an Engine.IO message
	Close()
	Query() url.Values // the handshake's query
}

// Server holds the connected sockets (a stand-in for the hub).
type Server struct {
	tokens *tokens.Manager
	ticks  []time.Duration // server-initiated "tick" events after CONNECT

	mu    sync.RWMutex
	conns map[*Conn]struct{}
}

func NewServer(secret string, ticks []time.Duration) (*Server, error) {
	m, err := tokens.NewManager(tokens.Config{Secret: []byte(secret), TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	return &Server{tokens: m, ticks: ticks, conns: make(map[*Conn]struct{})}, nil
}

// CheckHandshake refuses a handshake whose query token is bad before any session exists
// (401 JSON, as Jetsocket does for v2). A handshake without a query token passes: a v5
// client may send its token in the CONNECT packet instead.
func (s *Server) CheckHandshake(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("sid") == "" && q.Get("token") != "" {
			if _, err := s.tokens.Verify(q.Get("token")); err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "reason": string(tokens.ReasonOf(err))})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Count is the number of connected sockets.
func (s *Server) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// Conn is one socket on the root namespace.
type Conn struct {
	srv *Server
	e   Engine

	mu        sync.Mutex
	connected bool
	closed    bool
	id        string
	timers    []*time.Timer
}

// Open is called by the engine for a new session.
func (s *Server) Open(e Engine) *Conn { return &Conn{srv: s, e: e} }

// OnMessage handles one socket.io packet.
func (c *Conn) OnMessage(p string) {
	if p == "" {
		return
	}
	switch p[0] {
	case '0':
		c.onConnect(p[1:])
	case '1':
		c.e.Close()
	case '2':
		c.onEvent(p[1:])
	}
}

// OnClose is called by the engine once the session is gone.
func (c *Conn) OnClose() {
	c.mu.Lock()
	c.closed = true
	for _, t := range c.timers {
		t.Stop()
	}
	c.mu.Unlock()
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
}

var errNoToken = errors.New("no token")

// onConnect answers CONNECT: 0{"sid"} or CONNECT_ERROR 4{"message","data"}.
func (c *Conn) onConnect(rest string) {
	if rest != "" && rest[0] == '/' { // only the root namespace
		nsp, _, _ := bytes.Cut([]byte(rest), []byte{','})
		c.e.Send("4" + string(nsp) + `,{"message":"Invalid namespace"}`)
		return
	}
	token := c.e.Query().Get("token")
	if rest != "" {
		var auth struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(rest), &auth); err == nil && auth.Token != "" {
			token = auth.Token
		}
	}
	var claims *tokens.Claims
	err := errNoToken
	if token != "" {
		claims, err = c.srv.tokens.Verify(token)
	}
	if err != nil {
		reason := "missing"
		if err != errNoToken {
			reason = string(tokens.ReasonOf(err))
		}
		b, _ := json.Marshal(map[string]any{"message": "invalid_token", "data": map[string]any{"status": 401, "reason": reason}})
		c.e.Send("4" + string(b))
		return
	}
	c.mu.Lock()
	if c.connected || c.closed {
		c.mu.Unlock()
		return
	}
	c.connected = true
	var b [8]byte
	_, _ = rand.Read(b[:])
	c.id = hex.EncodeToString(b[:])
	c.mu.Unlock()
	c.srv.mu.Lock()
	c.srv.conns[c] = struct{}{}
	c.srv.mu.Unlock()

	c.e.Send(`0{"sid":"` + c.id + `"}`)
	est, _ := json.Marshal([]any{"jetsocket:connection_established", map[string]string{"socket_id": c.id, "user_id": claims.UserID()}})
	c.e.Send("2" + string(est))
	c.mu.Lock()
	for i, d := range c.srv.ticks {
		pkt := `2["tick",{"n":` + strconv.Itoa(i) + `}]`
		c.timers = append(c.timers, time.AfterFunc(d, func() { c.e.Send(pkt) }))
	}
	c.mu.Unlock()
}

// onEvent handles 2[<ack id>]["name",args...].
func (c *Conn) onEvent(rest string) {
	c.mu.Lock()
	ok := c.connected
	c.mu.Unlock()
	if !ok {
		return
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	ack := rest[:i]
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(rest[i:]), &arr); err != nil || len(arr) == 0 {
		return
	}
	var name string
	if json.Unmarshal(arr[0], &name) != nil {
		return
	}
	switch name {
	case "jetsocket:ping":
		if ack != "" {
			c.e.Send("3" + ack + `[{"pong":true}]`)
		}
	case "echo":
		c.e.Send("2" + rest[i:])
		if ack != "" {
			c.e.Send("3" + ack + `[{"ok":true}]`)
		}
	case "broadcast":
		var arg json.RawMessage = []byte("null")
		if len(arr) > 1 {
			arg = arr[1]
		}
		pkt := `2["broadcast",` + string(arg) + `]`
		c.srv.mu.RLock()
		for o := range c.srv.conns {
			o.e.Send(pkt)
		}
		c.srv.mu.RUnlock()
		if ack != "" {
			c.e.Send("3" + ack + `[{"ok":true}]`)
		}
	}
}
