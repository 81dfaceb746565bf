package eio3

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/payload"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/googollee/go-socket.io/engineio/transport/polling"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/tokens"
)

// The polling-to-websocket upgrade of go-socket.io v1.7.0 loses messages in both
// directions; the types below contain it without touching the library.
//
// Server to client: the library swaps in the websocket and at once closes the paused
// polling conn. The session's read loop may still hold the polling conn, read io.EOF from
// it and close the whole session: about 1 in 20 default-option clients was disconnected
// right after upgrading. So a paused polling conn stays open for upgradeGrace after the
// library closes it: the loop only sees the library's temporary "paused" error and picks
// up the websocket on its next turn.
//
// Client to server: the library pauses the polling conn as soon as it has answered the
// client's websocket probe. A POST the client sent just before it saw that answer then
// gets 400 "paused"; engine.io-client drops the connection and the posted packets are
// lost (measured: 2 in 200 clients that emit right after connecting). So a POST that
// arrives while paused is decoded here and its packets handed off, by session id, to
// whichever conn the session reads next: the websocket once the client has sent its
// upgrade packet (the client sends it only after such a POST was answered, so order is
// kept), or the polling conn again if the upgrade fails.

// upgradeGrace is how long a paused polling conn stays open after the library closes it.
// A second is far beyond one turn of the read loop and costs nothing: the client has
// stopped polling by then.
const upgradeGrace = time.Second

// pausedRetryDelay slows the library's retry loop while a polling conn is paused: it
// retries a temporary error at once, which would spin a core until the upgrade ends.
const pausedRetryDelay = time.Millisecond

type pauser interface {
	Pause()
	Resume()
}

// handedPacket is an Engine.IO packet decoded from a POST made during an upgrade.
type handedPacket struct {
	ft   frame.Type
	pt   packet.Type
	data []byte
}

// handoffLimits bound what one session may have handed off and not yet read. A client
// that opens the websocket, sends the probe and never upgrades keeps the polling conn
// paused until the upgrade times out (PingTimeout); without bounds every POST it made
// meanwhile was queued (measured: 600 POSTs of 54 KB took the heap from 2 MB to 42 MB).
type handoffLimits struct {
	packets int // packets queued per session
	bytes   int // their data, per session
	// charge counts n packets of session sid against its connection's inbound rate
	// limit, as if they had been read; false refuses them. Nil charges nothing.
	charge func(sid string, n int) bool
}

// Refusals of a POST made during an upgrade.
var (
	errHandoffFull = errors.New("too much sent during the transport upgrade: finish the upgrade or wait for it to fail")
	errHandoffRate = errors.New("too many packets: over the inbound rate limit")
)

// handoff holds handed-off packets by Engine.IO session id until a conn reads them.
//
// Who drops a session's packets: the websocket once the client's upgrade packet went
// through (they are its to read); otherwise the polling conn, when it closes unpaused or
// when it resumes after the session was closed during the upgrade. The websocket of an
// upgrade that failed leaves them to the polling conn, which reads them next.
type handoff struct {
	lim handoffLimits
	ids *sessionIDs // where a new session's handshake values are kept by sid (openInfo)
	mu  sync.Mutex
	m   map[string]*handedQueue
}

type handedQueue struct {
	ps    []handedPacket
	bytes int
}

func newHandoff(lim handoffLimits) *handoff {
	return &handoff{lim: lim, ids: newSessionIDs(), m: make(map[string]*handedQueue)}
}

// push queues ps for sid, or refuses all of them (errHandoffFull, errHandoffRate).
func (h *handoff) push(sid string, ps []handedPacket) error {
	n := 0
	for _, p := range ps {
		n += len(p.data)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.m[sid]
	if q == nil {
		q = &handedQueue{}
	}
	if len(q.ps)+len(ps) > h.lim.packets || q.bytes+n > h.lim.bytes {
		return errHandoffFull
	}
	if h.lim.charge != nil && !h.lim.charge(sid, len(ps)) {
		return errHandoffRate
	}
	q.ps = append(q.ps, ps...)
	q.bytes += n
	h.m[sid] = q
	return nil
}

func (h *handoff) pop(sid string) (handedPacket, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.m[sid]
	if q == nil || len(q.ps) == 0 {
		return handedPacket{}, false
	}
	p := q.ps[0]
	q.ps[0] = handedPacket{}
	q.ps = q.ps[1:]
	q.bytes -= len(p.data)
	if len(q.ps) == 0 {
		delete(h.m, sid)
	}
	return p, true
}

func (h *handoff) drop(sid string) {
	h.mu.Lock()
	delete(h.m, sid)
	h.mu.Unlock()
}

func (h *handoff) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}

// handedReader reads a handed-off packet. The read loop knows it by its type: its
// packet was counted against the inbound rate limit when it was posted.
type handedReader struct{ *bytes.Reader }

func (handedReader) Close() error { return nil }

// Counted: a handed-off packet was counted against the inbound rate as it was posted.
func (handedReader) Counted() bool { return true }

func (p handedPacket) reader() io.ReadCloser { return handedReader{bytes.NewReader(p.data)} }

// upgradeSafePolling wraps go-socket.io's polling transport; see graceConn.
type upgradeSafePolling struct {
	*polling.Transport
	handoff   *handoff
	maxFrame  int64
	afterOpen func() // tests only: runs once a session's OPEN packet is written
}

func (t upgradeSafePolling) Accept(w http.ResponseWriter, r *http.Request) (transport.Conn, error) {
	if query.Get(r.URL.RawQuery, "sid") != "" { // the session is on a websocket: see upgrades.go
		return nil, refuse(w, errs.CodeTransportMismatch, "this session is on websocket; polling requests for it are refused")
	}
	c, err := t.Transport.Accept(w, r)
	if err != nil {
		return nil, err
	}
	return &graceConn{Conn: c, handoff: t.handoff, maxFrame: t.maxFrame, afterOpen: t.afterOpen, open: newOpenInfo(r, "polling")}, nil
}

// graceConn is a polling conn that survives the upgrade races described above.
type graceConn struct {
	transport.Conn
	handoff   *handoff
	maxFrame  int64
	afterOpen func()
	open      *openInfo // the handshake's values, until the OPEN packet names the sid

	mu      sync.Mutex
	sid     string // learnt from the first request that carries it
	paused  bool
	closing bool
}

// Pause and Resume keep the session's upgrade path working: it type-asserts the old
// conn to a pauser and refuses to upgrade otherwise. paused is set first so no POST
// can reach the library between its pause and ours.
func (c *graceConn) Pause() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
	c.Conn.(pauser).Pause()
}

func (c *graceConn) Resume() {
	c.Conn.(pauser).Resume()
	c.mu.Lock()
	c.paused = false
	sid, closed := c.sid, c.closing // closed: the session ended during the failed upgrade
	c.mu.Unlock()
	if closed {
		c.handoff.drop(sid)
	}
}

func (c *graceConn) state() (sid string, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid, c.paused
}

func (c *graceConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		c.handoff.drop(c.sid)
		return c.Conn.Close()
	}
	if !c.closing {
		c.closing = true
		time.AfterFunc(upgradeGrace, func() { _ = c.Conn.Close() })
	}
	return nil
}

func (c *graceConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	sid, paused := c.state()
	if !paused && sid != "" {
		if p, ok := c.handoff.pop(sid); ok { // posted during an upgrade that failed
			return p.ft, p.pt, p.reader(), nil
		}
	}
	ft, pt, r, err := c.Conn.NextReader()
	if err != nil && isTemporary(err) && paused {
		time.Sleep(pausedRetryDelay)
	}
	return ft, pt, r, err
}

func (c *graceConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	w, err := c.Conn.NextWriter(ft, pt)
	if err != nil && isTemporary(err) {
		if _, paused := c.state(); paused {
			time.Sleep(pausedRetryDelay)
		}
	}
	if err == nil && pt == packet.OPEN {
		open := c.open
		c.open = nil
		return &openWriter{WriteCloser: w, ids: c.handoff.ids, info: open, after: c.afterOpen}, nil
	}
	return w, err
}

// openInfo is what a v3 session's handshake request said that the socket layer needs
// (Session): go-socket.io keeps only the URL and address of the current transport, so
// the values are taken from the request as its transport conn is accepted, kept by the
// conn until the library writes the OPEN packet (which names the sid), and from then by
// sid (sessionIDs) until the session is accepted.
type openInfo struct {
	ip, token, transport string
	// claims the HTTP layer verified from the query token (engine.WithVerified); the
	// token is then not kept (a substring of it would hold the whole request line).
	claims *tokens.Claims
}

func newOpenInfo(r *http.Request, transport string) *openInfo {
	info := &openInfo{ip: engine.ClientIP(r), transport: transport, claims: engine.Verified(r)}
	if info.claims == nil {
		info.token = query.Get(r.URL.RawQuery, "token")
	}
	return info
}

// openWriter is the OPEN packet being written: on Close it files info under the sid the
// packet names, before the library adds the session to its map and hands it to Accept,
// then runs after (tests).
type openWriter struct {
	io.WriteCloser
	ids   *sessionIDs
	info  *openInfo
	after func()
	buf   []byte
}

func (w *openWriter) Write(p []byte) (int, error) {
	if room := 512 - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(len(p), room)]...)
	}
	return w.WriteCloser.Write(p)
}

func (w *openWriter) Close() error {
	var open struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal(w.buf, &open) == nil && open.SID != "" && w.info != nil {
		w.ids.opened(open.SID, w.info)
	}
	err := w.WriteCloser.Close()
	if w.after != nil {
		w.after()
	}
	return err
}

// ServeHTTP answers the polling requests; the session requires an http.Handler.
func (c *graceConn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.sid == "" {
		c.sid = query.Get(r.URL.RawQuery, "sid")
	}
	sid, paused := c.sid, c.paused
	c.mu.Unlock()
	if paused && r.Method == http.MethodPost && sid != "" {
		c.handOff(w, r, sid)
		return
	}
	c.Conn.(http.Handler).ServeHTTP(w, r)
}

// handOff decodes a POST made while paused and queues its packets for the session.
func (c *graceConn) handOff(w http.ResponseWriter, r *http.Request, sid string) {
	binary := strings.HasPrefix(r.Header.Get("Content-Type"), "application/octet-stream")
	pl := payload.New(binary)
	fed := make(chan error, 1)
	go func() {
		fed <- pl.FeedIn(io.LimitReader(r.Body, c.maxFrame*4), binary)
		_ = pl.Close() // ends the NextReader loop below once everything is read
	}()
	var ps []handedPacket
	var readErr error
	for {
		ft, pt, rd, err := pl.NextReader()
		if err != nil {
			break
		}
		data, err := io.ReadAll(io.LimitReader(rd, c.maxFrame))
		_ = rd.Close()
		if err != nil {
			readErr = err
			break
		}
		ps = append(ps, handedPacket{ft: ft, pt: pt, data: data})
	}
	if err := <-fed; err != nil && readErr == nil {
		readErr = err
	}
	if readErr != nil {
		errs.Write(w, errs.New(errs.Invalid, errs.CodeBadPayload, "malformed Engine.IO payload"))
		return
	}
	switch err := c.handoff.push(sid, ps); err {
	case nil:
		_, _ = io.WriteString(w, "ok")
	case errHandoffRate:
		errs.Write(w, errs.New(errs.RateLimited, errs.CodeRateLimited, err.Error()))
	default:
		errs.Write(w, errs.New(errs.TooLarge, errs.CodeUpgradeBacklogFull, err.Error()))
	}
}

// handoffWebsocket wraps go-socket.io's websocket transport so that a session's
// websocket first delivers the packets posted during its upgrade.
type handoffWebsocket struct {
	*wsTransport
	handoff  *handoff
	upgrades *upgrades
}

func (t handoffWebsocket) Accept(w http.ResponseWriter, r *http.Request) (transport.Conn, error) {
	sid := query.Get(r.URL.RawQuery, "sid")
	if sid == "" {
		c, err := t.wsTransport.Accept(w, r)
		if err != nil {
			return nil, err
		}
		return &handoffConn{Conn: c, handoff: t.handoff, upgrades: t.upgrades, open: newOpenInfo(r, "websocket")}, nil
	}
	if !t.upgrades.begin(sid) { // see upgrades.go
		return nil, refuse(w, errs.CodeUpgradeInProgress, "this session is already upgrading to websocket")
	}
	ip := engine.ClientIP(r)
	if ips := t.upgrades.ips; ips != nil && !ips.Acquire(ip) {
		t.upgrades.end(sid)
		errs.Write(w, errs.New(errs.RateLimited, errs.CodeTooManyConnections, "this address has too many open connections"))
		return nil, errRefused
	}
	c, err := t.wsTransport.Accept(w, r)
	if err != nil {
		t.upgrades.end(sid)
		if t.upgrades.ips != nil {
			t.upgrades.ips.Release(ip)
		}
		return nil, err
	}
	hc := &handoffConn{Conn: c, handoff: t.handoff, upgrades: t.upgrades, sid: sid, ip: ip}
	hc.counted.Store(t.upgrades.ips != nil)
	t.upgrades.started(sid, hc)
	return hc, nil
}

// handoffConn is a websocket conn. sid is empty for a session that starts on the
// websocket: nothing is ever handed to it.
type handoffConn struct {
	transport.Conn
	handoff  *handoff
	upgrades *upgrades
	sid      string
	upgraded atomic.Bool // the client's upgrade packet went through
	ip       string
	counted  atomic.Bool // held against upgrades.ips until upgraded or closed
	open     *openInfo   // a new session's handshake values, until its OPEN packet
}

func (c *handoffConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	w, err := c.Conn.NextWriter(ft, pt)
	if err == nil && pt == packet.OPEN && c.open != nil {
		open := c.open
		c.open = nil
		return &openWriter{WriteCloser: w, ids: c.handoff.ids, info: open}, nil
	}
	return w, err
}

// uncount releases the websocket's place in the per-IP count: it closed, or it became
// the session's transport (counted with the session's connection).
func (c *handoffConn) uncount() {
	if c.counted.CompareAndSwap(true, false) {
		c.upgrades.ips.Release(c.ip)
	}
}

func (c *handoffConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	if c.sid != "" && c.upgraded.Load() {
		if p, ok := c.handoff.pop(c.sid); ok {
			return p.ft, p.pt, p.reader(), nil
		}
	}
	ft, pt, r, err := c.Conn.NextReader()
	if err == nil && pt == packet.UPGRADE {
		c.upgraded.Store(true)
		c.uncount()
		// The library has read its probe: the session's pings are ours from here on,
		// so the socket layer can hand the connection to its poller (wsConn.ownPings).
		if ws, ok := c.Conn.(*wsConn); ok {
			ws.answerPings()
		}
	}
	return ft, pt, r, err
}

func (c *handoffConn) Close() error {
	if c.sid != "" {
		// A failed upgrade leaves the packets posted meanwhile to the resumed polling
		// conn; the websocket that took over drops what it did not read.
		if c.upgraded.Load() {
			c.handoff.drop(c.sid)
		}
		c.upgrades.end(c.sid)
		c.uncount()
	}
	return c.Conn.Close()
}

func isTemporary(err error) bool {
	te, ok := err.(payload.Error)
	return ok && te.Temporary()
}

// sessionIDs generates Engine.IO session ids. The library's default is a counter, and a
// guessed sid lets anyone read or write another client's polling session; these are
// 128 random bits.
//
// It also closes a race of the library's handshake: go-socket.io writes the OPEN packet
// (which tells the client its sid) and only then, on another goroutine, adds the session
// to its map. A polling client answers the handshake with a GET for that sid at once,
// and when the GET wins, the library answers 400 "invalid sid" and the client gives up
// (measured: 3 of 1,280 default-option connects). So every sid handed out is pending
// until Accept returns its session, which the library does only after adding it, and a
// request for a pending sid waits for that (waitReady) before it reaches the library.
type sessionIDs struct {
	mu        sync.Mutex
	pending   map[string]pendingID
	lastSweep time.Time
}

type pendingID struct {
	ready chan struct{}
	since time.Time
	info  *openInfo // the handshake's values, once the OPEN packet is written
}

// pendingTTL bounds how long a sid stays pending: a session whose OPEN packet failed is
// never accepted, and its entry is swept after this.
const pendingTTL = 30 * time.Second

// readyWait is how long a request for a pending sid waits for its session.
const readyWait = 5 * time.Second

func newSessionIDs() *sessionIDs { return &sessionIDs{pending: make(map[string]pendingID)} }

func (g *sessionIDs) NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.lastSweep) > pendingTTL {
		g.lastSweep = now
		for sid, p := range g.pending {
			if now.Sub(p.since) > pendingTTL {
				close(p.ready)
				delete(g.pending, sid)
			}
		}
	}
	g.pending[id] = pendingID{ready: make(chan struct{}), since: now}
	return id
}

// opened files the handshake values of sid's session, whose OPEN packet is being written.
func (g *sessionIDs) opened(sid string, info *openInfo) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.pending[sid]; ok {
		p.info = info
		g.pending[sid] = p
	}
}

// info is the handshake values filed for sid (nil if none were).
func (g *sessionIDs) info(sid string) *openInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending[sid].info
}

// accepted marks sid's session as in the library's map.
func (g *sessionIDs) accepted(sid string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.pending[sid]; ok {
		close(p.ready)
		delete(g.pending, sid)
	}
}

// waitReady returns once sid is not pending (at once for nearly every request), after
// readyWait, or when done is closed.
func (g *sessionIDs) waitReady(sid string, done <-chan struct{}) {
	g.mu.Lock()
	p, ok := g.pending[sid]
	g.mu.Unlock()
	if !ok {
		return
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-t.C:
	case <-done:
	}
}

// newTransports lists websocket last so polling clients are offered the upgrade.
func newTransports(checkOrigin func(*http.Request) bool, maxFrame int64, h *handoff, afterOpen func(), ups *upgrades, deadline time.Duration) []transport.Transport {
	return []transport.Transport{
		upgradeSafePolling{
			Transport: &polling.Transport{
				Client: &http.Client{Timeout: time.Minute},
				// CORS headers are written by our middleware, which knows ALLOWED_ORIGINS;
				// the library must not echo any origin itself.
				CheckOrigin: func(*http.Request) bool { return false },
			},
			handoff:   h,
			maxFrame:  maxFrame,
			afterOpen: afterOpen,
		},
		handoffWebsocket{wsTransport: &wsTransport{checkOrigin: checkOrigin, deadline: deadline}, handoff: h, upgrades: ups},
	}
}
