package socket

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/jetsocket/jetsocket/server/errs"
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

// acquire counts one more socket for ip unless it already holds max.
func (c *ipSockets) acquire(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[ip] >= c.max {
		return false
	}
	c.n[ip]++
	return true
}

// add counts one more socket for ip, over max or not (one admitted elsewhere).
func (c *ipSockets) add(ip string) {
	c.mu.Lock()
	c.n[ip]++
	c.mu.Unlock()
}

func (c *ipSockets) release(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] <= 1 {
		delete(c.n, ip)
		return
	}
	c.n[ip]--
}

func (c *ipSockets) full(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max > 0 && c.n[ip] >= c.max
}

func (c *ipSockets) count(ip string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[ip]
}

func refuseTooMany(w http.ResponseWriter, log *slog.Logger, ip, what string) {
	log.Warn("socket refused", "reason", errs.CodeTooManyConnections, "ip", ip, "what", what)
	errs.Write(w, errs.New(errs.RateLimited, errs.CodeTooManyConnections, "this address has too many open connections"))
}

// admitSocket is the v4 engine's Admit: a new session or an upgrade's websocket counts
// against MAX_CONNECTIONS_PER_IP until it ends.
func (s *Server) admitSocket(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	ip := engine.ClientIP(r)
	if !s.ips.acquire(ip) {
		what := "session"
		if r.URL.Query().Get("sid") != "" {
			what = "upgrade"
		}
		refuseTooMany(w, s.log, ip, what)
		return nil, false
	}
	return func() { s.ips.release(ip) }, true
}

// engineErrorWriter stands between go-socket.io and the client: the library answers its
// own failures with http.Error, a 500 or 502 whose text is an internal error message
// ("transport accept err: ...", a payload's read error). Those become our JSON 500/502
// with a fixed message; the text is logged. Its 400s are left to the HTTP layer's
// EngineErrors, which types them.
type engineErrorWriter struct {
	http.ResponseWriter
	log     *slog.Logger
	status  int // a captured 5xx
	written bool
	text    strings.Builder
}

// Hijack lets the websocket transport take the connection.
func (w *engineErrorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("socket: the response writer cannot hijack")
	}
	w.written = true
	return h.Hijack()
}

func (w *engineErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes long-poll flushes through.
func (w *engineErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *engineErrorWriter) WriteHeader(code int) {
	// Captured even after an answer was written (gorilla's own refusal of a websocket
	// handshake, which the library follows with its 502): its text must not follow it.
	if code >= 500 && w.status == 0 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.status = code
		return
	}
	w.written = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *engineErrorWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		if room := 256 - w.text.Len(); room > 0 {
			w.text.Write(b[:min(len(b), room)])
		}
		return len(b), nil
	}
	w.written = true
	return w.ResponseWriter.Write(b)
}

// finish writes a captured 5xx as JSON, unless an answer went out before it.
func (w *engineErrorWriter) finish(r *http.Request) {
	if w.status == 0 {
		return
	}
	w.log.Warn("engine error", "status", w.status, "err", strings.TrimSpace(w.text.String()),
		"transport", r.URL.Query().Get("transport"), "method", r.Method)
	if w.written {
		return
	}
	w.Header().Del("X-Content-Type-Options")
	w.Header().Del("Content-Length")
	errs.WriteStatus(w.ResponseWriter, w.status, errs.CodeTransportError, "the transport failed; reconnect")
}

// serveV3 hands a request to go-socket.io: a new session's past MAX_CONNECTIONS_PER_IP
// is refused first, and the library's 5xx answers are rewritten (engineErrorWriter).
func (s *Server) serveV3(w http.ResponseWriter, r *http.Request) {
	if sid := r.URL.Query().Get("sid"); sid != "" && s.sessionEnded(sid) {
		errs.Write(w, errs.New(errs.Invalid, errs.CodeInvalidSid, "Session ID unknown"))
		return
	}
	if r.URL.Query().Get("sid") == "" {
		if ip := engine.ClientIP(r); s.ips.full(ip) {
			refuseTooMany(w, s.log, ip, "session")
			return
		}
	}
	ew := &engineErrorWriter{ResponseWriter: w, log: s.log}
	s.engine.ServeHTTP(ew, r)
	ew.finish(r)
}

// sessionEnded reports whether sid's v3 session has ended but is still in the library's
// map. The library closes the websocket (a client's close packet, a ping timeout) before
// our read loop learns of it, and the session leaves the map only in endV3, after the
// disconnect hooks; a request for the sid in between would find the session and be
// taken for an upgrade of a live one.
func (s *Server) sessionEnded(sid string) bool {
	s.mu.RLock()
	c := s.sessions[sid]
	_, ending := s.ending[sid]
	s.mu.RUnlock()
	if ending {
		return true
	}
	if c == nil {
		return false
	}
	ws := c.sess.WebSocket()
	return ws != nil && ws.Shut()
}

// endV3 releases what a v3 connection held in the engine: its session, its place in
// the per-IP count, and an upgrade websocket that never finished.
func (s *Server) endV3(c *Conn) {
	s.engine.Remove(c.sess.ID())
	s.mu.Lock()
	delete(s.ending, c.sess.ID())
	s.mu.Unlock()
	s.upgrades.abort(c.sess.ID())
	s.ips.release(c.IP())
}
