package socket

import (
	"net/http"
	"sync"

	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/engine"
)

// ipSockets counts the sockets each client address holds in this layer: v4 sessions from
// their handshake (before CONNECT too), v3 connections, and the websockets of upgrades
// under way on both engines. The protocol layer counts connected sockets only; a session
// that never sends CONNECT, or a probe that never finishes, is counted here, so neither
// escapes MAX_CONNECTIONS_PER_IP.
type ipSockets struct {
	max int // 0: unlimited (counted all the same)
	mu  sync.Mutex
	n   map[string]int
}

func newIPSockets(max int) *ipSockets { return &ipSockets{max: max, n: make(map[string]int)} }

// Acquire counts one more socket for ip unless it already holds max.
func (c *ipSockets) Acquire(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[ip] >= c.max {
		return false
	}
	c.n[ip]++
	return true
}

// Add counts one more socket for ip, over max or not (one admitted elsewhere).
func (c *ipSockets) Add(ip string) {
	c.mu.Lock()
	c.n[ip]++
	c.mu.Unlock()
}

func (c *ipSockets) Release(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] <= 1 {
		delete(c.n, ip)
		return
	}
	c.n[ip]--
}

func (c *ipSockets) Full(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max > 0 && c.n[ip] >= c.max
}

func (c *ipSockets) count(ip string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[ip]
}

// admitSocket is the v4 engine's Admit: a new session or an upgrade's websocket counts
// against MAX_CONNECTIONS_PER_IP until it ends.
func (s *Server) admitSocket(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	ip := engine.ClientIP(r)
	if !s.ips.Acquire(ip) {
		what := "session"
		if query.Has(r.URL.RawQuery, "sid") {
			what = "upgrade"
		}
		engine.RefuseTooMany(w, s.log, ip, what)
		return nil, false
	}
	return func() { s.ips.Release(ip) }, true
}
