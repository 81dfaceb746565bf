// Package eio3 walls in go-socket.io v1.7.0's Engine.IO v3 server (socket.io-client 2.x)
// with everything that works around its defects (PRODUCT.md §10; docs/security.md, "How
// it contains go-socket.io's defects"): our websocket transport (wstransport.go), the
// polling wrapper that survives the upgrade races and the handoff of packets posted
// during an upgrade (transport.go), random session ids that are waited for until the
// library has the session (sessionIDs), the upgrades it should refuse and the probe
// websockets it would leave open (upgrades.go), its error answers rewritten (errors.go),
// and sessions removed from its map when they end. It serves HTTP and hands out
// sessions (Accept) that the socket layer drives as socket.Session values; nothing
// outside this package imports the library.
package eio3

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/googollee/go-socket.io/engineio"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/engine"
)

// IPCounter counts the sockets of each client address (MAX_CONNECTIONS_PER_IP).
type IPCounter interface {
	Acquire(ip string) bool // one more, unless ip is at the limit
	Add(ip string)          // one more, over the limit or not (admitted already)
	Release(ip string)
	Full(ip string) bool
}

// Options configures an Engine. IPs is required.
type Options struct {
	PingInterval time.Duration // socket.io's pingInterval
	PingTimeout  time.Duration // socket.io's pingTimeout (see NewEngine)
	CheckOrigin  func(*http.Request) bool
	// MaxFrameBytes bounds a packet posted during an upgrade.
	MaxFrameBytes int
	// HandoffPackets and HandoffBytes bound what a session may post during its upgrade
	// and not yet have read (see handoff).
	HandoffPackets, HandoffBytes int
	// Charge counts n packets posted during session sid's upgrade against its
	// connection's inbound rate, as if they had been read; false refuses them. Nil
	// charges nothing.
	Charge func(sid string, n int) bool
	// IPs counts sessions (from Accept until Close) and upgrades' websockets (until the
	// upgrade finishes or fails); a new session of an address that is Full is refused.
	IPs IPCounter
	Log *slog.Logger
	// AfterOpen, tests only: runs once a session's OPEN packet is written, inside the
	// library's handshake race (sessionIDs).
	AfterOpen func()
}

// Engine is the Engine.IO v3 server.
type Engine struct {
	lib      *engineio.Server
	ids      *sessionIDs
	upgrades *upgrades
	ips      IPCounter
	log      *slog.Logger

	mu   sync.RWMutex        // read-held on every request that names a sid
	live map[string]*Session // accepted and not closed, by sid
}

// NewEngine builds an Engine.
func NewEngine(o Options) (*Engine, error) {
	if o.IPs == nil {
		return nil, errors.New("eio3: Options.IPs is required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		ids:      newSessionIDs(),
		upgrades: newUpgrades(o.IPs),
		ips:      o.IPs,
		log:      o.Log,
		live:     make(map[string]*Session),
	}
	h := newHandoff(handoffLimits{packets: o.HandoffPackets, bytes: o.HandoffBytes, charge: o.Charge})
	h.ids = e.ids
	// go-socket.io re-arms its read deadline only on the client's pings, which come every
	// PingInterval: its timeout is PingInterval+PingTimeout (engine.io v3's own rule).
	e.lib = engineio.NewServer(&engineio.Options{
		PingInterval:       o.PingInterval,
		PingTimeout:        o.PingInterval + o.PingTimeout,
		Transports:         newTransports(o.CheckOrigin, int64(o.MaxFrameBytes), h, o.AfterOpen, e.upgrades, o.PingInterval+o.PingTimeout),
		SessionIDGenerator: e.ids,
	})
	return e, nil
}

// ServeHTTP serves one Engine.IO v3 request. A request for a sid the library is still
// adding waits for it; one for a session that has ended (or never was) is 400
// invalid_sid; a new session of an address at MAX_CONNECTIONS_PER_IP is 429; the
// library's own 5xx answers are rewritten (engineErrorWriter).
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if sid := query.Get(r.URL.RawQuery, "sid"); sid != "" {
		e.ids.waitReady(sid, r.Context().Done())
		if !e.alive(sid) {
			errs.Write(w, errs.New(errs.Invalid, errs.CodeInvalidSid, "Session ID unknown"))
			return
		}
	} else if ip := engine.ClientIP(r); e.ips.Full(ip) {
		engine.RefuseTooMany(w, e.log, ip, "session")
		return
	} else if engine.Verified(r) != nil {
		r = withoutToken(r)
	}
	ew := &engineErrorWriter{ResponseWriter: w, log: e.log}
	e.lib.ServeHTTP(ew, r)
	ew.finish(r)
}

// withoutToken is a new session's request with a query of its own, without the token
// (its claims travel in the request's context). The library keeps the query's
// transport value in its session for the session's life, and a value read from the
// request's query is a substring of the request line, token and all: about 300 bytes
// held per idle connection.
func withoutToken(r *http.Request) *http.Request {
	q := r.URL.Query()
	q.Del("token")
	u := *r.URL
	u.RawQuery = q.Encode()
	r2 := *r
	r2.URL = &u
	return &r2
}

// alive reports whether sid is a session that is accepted and has not ended. The
// library closes a session's websocket (a client's close packet, a ping timeout) before
// the socket layer's read loop learns of it and closes the session; a request for the
// sid in between is for a session that has ended, not an upgrade of a live one.
func (e *Engine) alive(sid string) bool {
	e.mu.RLock()
	s := e.live[sid]
	e.mu.RUnlock()
	if s == nil || s.ended.Load() {
		return false
	}
	ws := s.WebSocket()
	return ws == nil || !ws.Shut()
}

// Accept returns the next new session, once the library has it; an error after Close.
// The session counts against its address until it is closed.
func (e *Engine) Accept() (*Session, error) {
	lib, err := e.lib.Accept()
	if err != nil {
		return nil, err
	}
	sid := lib.ID()
	info := e.ids.info(sid)
	if info == nil { // filed by its OPEN packet: never missing unless the library changed
		info = &openInfo{}
	}
	s := &Session{lib: lib, e: e, info: info}
	e.ips.Add(info.ip)
	e.mu.Lock()
	e.live[sid] = s
	e.mu.Unlock()
	e.ids.accepted(sid) // after live: a request waiting for the sid finds it there
	return s, nil
}

// end releases what a closed session held.
func (e *Engine) end(s *Session) {
	sid := s.ID()
	e.lib.Remove(sid)
	e.mu.Lock()
	if e.live[sid] == s {
		delete(e.live, sid)
	}
	e.mu.Unlock()
	e.upgrades.abort(sid)
	e.ips.Release(s.info.ip)
}

// Close stops Accept. Call it once no handshake request is in the engine any more.
func (e *Engine) Close() {
	// A polling handshake hands its session to Accept from a goroutine of the library's
	// that may still be running when its request returned; closing the library under it
	// would panic (send on closed channel). Let it land first.
	time.Sleep(100 * time.Millisecond)
	_ = e.lib.Close()
}

// Upgrading is the number of sessions with an upgrade's websocket open.
func (e *Engine) Upgrading() int { return e.upgrades.count() }
