// Package eio4 is an Engine.IO protocol v4 server (socket.io-client 3.x and 4.x):
// long-polling with the v4 payload format (packets joined by \x1e), websocket, the
// polling-to-websocket upgrade and server-initiated heartbeats. It carries text messages;
// binary ones are reported as such and never decoded (Jetsocket refuses binary packets).
//
// It is pull-based, like go-socket.io's engine that serves v3 beside it, so the socket
// layer drives both the same way: one goroutine per session calls NextReader; on a
// websocket that call reads the socket itself, so an idle websocket session costs that
// one parked goroutine and one runtime timer (the heartbeat), nothing else. The websocket
// itself is the caller's (Options.Upgrade): the socket layer hands in its own, which it
// can also write prebuilt frames to directly.
//
// Written for issue 17 from the prototype in docs/engine-v4-prototype/eio4, chosen on the
// figures in docs/engine-v4-evaluation.md.
package eio4

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/tokens"
)

// WebSocket is a websocket connection as the engine uses it. Writes may come from several
// goroutines at once and must be serialized by the implementation; reads come from one.
type WebSocket interface {
	// NextMessage returns the next message's reader; binary reports a binary message.
	NextMessage() (binary bool, r io.Reader, err error)
	WriteText(p []byte) error
	SetReadDeadline(t time.Time) error
	Close() error
}

// Options configures a Server. Upgrade and OnOpen are required.
type Options struct {
	PingInterval time.Duration // default 25s
	PingTimeout  time.Duration // default 20s
	MaxPayload   int           // bytes per polling POST, announced to clients; default 1e6
	// MaxQueued bounds the messages a polling session holds either way: posted and not
	// yet read, or sent and not yet polled. Beyond it the session is closed (a flood, or
	// a client that stopped polling). Default 256.
	MaxQueued int
	// MaxQueuedBytes bounds the bytes of the messages posted and not yet read (MaxQueued
	// alone let a stalled session hold 256 full payloads). Default 2*MaxPayload.
	MaxQueuedBytes int
	// UpgradeTimeout bounds a websocket upgrade from its handshake to the client's upgrade
	// packet, as engine.io's upgradeTimeout; the probe websocket is closed then. Default 10s.
	UpgradeTimeout time.Duration
	// Upgrade accepts a websocket (origin check included); on error it has answered.
	Upgrade func(w http.ResponseWriter, r *http.Request) (WebSocket, error)
	// Admit, if set, is asked before a new session or an upgrade's websocket is accepted;
	// false: it has answered the request (a limit). The release it returns is called once,
	// when that session or that websocket ends (an upgrade's, once the session took it).
	Admit func(w http.ResponseWriter, r *http.Request) (release func(), ok bool)
	// Refuse answers a request that a limit refuses (the inbound queue); default:
	// errs.WriteStatus, Jetsocket's one error body {error, message}.
	Refuse func(w http.ResponseWriter, status int, code, message string)
	// OnOpen is told of every new session, within the handshake request; it must not
	// block. The session's messages are read with NextReader.
	OnOpen func(*Session)
}

// Server serves Engine.IO v4 at one path.
type Server struct {
	opts Options

	mu       sync.Mutex
	sessions map[string]*Session // open ones, and closed polling ones until their last poll
	open     int
}

// NewServer returns a Server.
func NewServer(o Options) (*Server, error) {
	if o.Upgrade == nil || o.OnOpen == nil {
		return nil, errors.New("eio4: Options.Upgrade and Options.OnOpen are required")
	}
	if o.PingInterval == 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 1e6
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = 256
	}
	if o.MaxQueuedBytes == 0 {
		o.MaxQueuedBytes = 2 * o.MaxPayload
	}
	if o.UpgradeTimeout == 0 {
		o.UpgradeTimeout = 10 * time.Second
	}
	if o.Refuse == nil {
		o.Refuse = errs.WriteStatus
	}
	return &Server{opts: o, sessions: make(map[string]*Session)}, nil
}

// The refusals of Node's engine (its error codes 0-3 and 5, status 400), answered with
// Jetsocket's codes and body {error, message}, as the v3 endpoint answers them: a client
// sees one shape whatever its generation.
const (
	errUnknownTransport = errs.CodeInvalidTransport
	errUnknownSid       = errs.CodeInvalidSid
	errBadHandshake     = errs.CodeBadRequest
	errBadRequest       = errs.CodeBadRequest
	errUnsupportedEIO   = errs.CodeUnsupportedProtocol
)

func httpError(w http.ResponseWriter, code, msg string) {
	errs.Write(w, errs.New(errs.Invalid, code, msg))
}

// Count is the number of open sessions.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// ServeHTTP serves one Engine.IO v4 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if query.Get(r.URL.RawQuery, "EIO") != "4" {
		httpError(w, errUnsupportedEIO, "Unsupported protocol version")
		return
	}
	tr := query.Get(r.URL.RawQuery, "transport")
	if tr != "polling" && tr != "websocket" {
		httpError(w, errUnknownTransport, "Transport unknown")
		return
	}
	sid := query.Get(r.URL.RawQuery, "sid")
	if sid == "" {
		switch {
		case tr == "websocket":
			s.openWebsocket(w, r)
		case r.Method == http.MethodGet:
			s.openPolling(w, r)
		default:
			httpError(w, errBadHandshake, "Bad handshake method")
		}
		return
	}
	s.mu.Lock()
	sess := s.sessions[sid]
	s.mu.Unlock()
	if sess == nil {
		httpError(w, errUnknownSid, "Session ID unknown")
		return
	}
	switch {
	case tr == "websocket":
		sess.upgrade(w, r)
	case r.Method == http.MethodGet:
		sess.poll(w, r)
	case r.Method == http.MethodPost:
		sess.post(w, r)
	default:
		httpError(w, errBadRequest, "Bad request")
	}
}

// newID is as random as the v3 engine's session ids (128 bits).
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) newSession(r *http.Request, ws WebSocket) *Session {
	upgrades := `["websocket"]`
	if ws != nil {
		upgrades = `[]`
	}
	sess := &Session{srv: s, ws: ws,
		ip: engine.ClientIP(r), token: query.Get(r.URL.RawQuery, "token"), transport: "polling"}
	if ws != nil {
		sess.transport = "websocket"
	}
	s.mu.Lock()
	for {
		sess.id = newID()
		if _, taken := s.sessions[sess.id]; !taken {
			break
		}
	}
	s.sessions[sess.id] = sess
	s.open++
	s.mu.Unlock()
	open := `0{"sid":"` + sess.id + `","upgrades":` + upgrades +
		`,"pingInterval":` + strconv.FormatInt(s.opts.PingInterval.Milliseconds(), 10) +
		`,"pingTimeout":` + strconv.FormatInt(s.opts.PingTimeout.Milliseconds(), 10) +
		`,"maxPayload":` + strconv.Itoa(s.opts.MaxPayload) + `}`
	sess.out = []string{open}
	sess.heartbeat = time.AfterFunc(s.opts.PingInterval, sess.onHeartbeat)
	return sess
}

// admit asks Options.Admit about a new session or upgrade; ok false: answered.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if s.opts.Admit == nil {
		return nil, true
	}
	return s.opts.Admit(w, r)
}

func (s *Server) openPolling(w http.ResponseWriter, r *http.Request) {
	release, ok := s.admit(w, r)
	if !ok {
		return
	}
	sess := s.newSession(r, nil)
	sess.release = release
	s.opts.OnOpen(sess)
	sess.poll(w, r) // answers with the OPEN packet at once
}

func (s *Server) openWebsocket(w http.ResponseWriter, r *http.Request) {
	release, ok := s.admit(w, r)
	if !ok {
		return
	}
	ws, err := s.opts.Upgrade(w, r)
	if err != nil {
		if release != nil {
			release()
		}
		return
	}
	sess := s.newSession(r, ws)
	sess.release = release
	sess.mu.Lock()
	open := sess.out[0]
	sess.out = nil
	sess.mu.Unlock()
	// Not under mu (no lock is held across a network write): nothing else can be sent
	// before the OPEN packet, as no one knows of the session before OnOpen, and the
	// first ping comes PingInterval later.
	if err := ws.WriteText([]byte(open)); err != nil {
		sess.close("transport error")
		return
	}
	s.opts.OnOpen(sess)
}

// Shutdown closes every session.
func (s *Server) Shutdown() {
	s.mu.Lock()
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.Close()
	}
}

// ErrClosed is returned by a closed session.
var ErrClosed = errors.New("eio4: session closed")

// ErrQueueFull is returned by Send to a session closed because its client stopped
// taking what was sent (a slow consumer); errors.Is(err, ErrClosed) holds.
var ErrQueueFull = fmt.Errorf("%w: the client is not reading (queue full)", ErrClosed)

// Session is one Engine.IO session.
type Session struct {
	srv *Server
	id  string
	// What the handshake request said: the client address (engine.WithClientIP), the
	// query's token and the transport.
	ip, token, transport string

	mu          sync.Mutex
	closed      bool
	reason      string
	ws          WebSocket     // set once the session is on a websocket
	probing     bool          // a websocket upgrade is under way
	probe       WebSocket     // its websocket, closed with the session
	swapping    bool          // the client sent its upgrade packet; out is being written to probe
	release     func()        // Options.Admit's, called by close
	out         []string      // packets for the next poll (or, while swapping, the websocket)
	wake        chan string   // a waiting poll's: "" to look at out, else a packet to answer with
	in          [][]byte      // messages posted and not yet read
	inBytes     int           // their size
	inWake      chan struct{} // a reader waiting with no websocket: look again (in, ws or closed changed); made by the first such wait
	heartbeat   *time.Timer
	pingPending bool
	final       string // a closed polling session's last answer, for its next poll
}

// ID is the Engine.IO session id.
func (s *Session) ID() string { return s.id }

// ClientIP is the handshake's client address, as the HTTP layer resolved it.
func (s *Session) ClientIP() string { return s.ip }

// Token is the handshake query's token ("" when it had none; socket.io-client 3.x/4.x
// send theirs in CONNECT).
func (s *Session) Token() string { return s.token }

// Verified is nil: a v4 client's token is checked at its CONNECT (auth, else the
// query's), which comes after the handshake.
func (s *Session) Verified() *tokens.Claims { return nil }

// Transport is the transport of the handshake ("polling" or "websocket").
func (s *Session) Transport() string { return s.transport }

// Protocol is the socket.io protocol revision spoken over Engine.IO v4: 5.
func (s *Session) Protocol() int { return 5 }

// WebSocket is the websocket the session is on, once it is on one and it is the socket
// layer's own (engine.WebSocket, which frames can be written to directly); else nil.
func (s *Session) WebSocket() *engine.WebSocket {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws, _ := s.ws.(*engine.WebSocket)
	return ws
}

// CutOff reports whether the session was closed because its client stopped taking what
// was sent (ReasonQueueFull).
func (s *Session) CutOff() bool { return s.Reason() == ReasonQueueFull }

// Reason is why the session closed ("" while open).
func (s *Session) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Send sends one message packet. On polling it is queued for the next poll; a session
// with MaxQueued packets unpolled is closed and ErrClosed returned.
func (s *Session) Send(text []byte) error {
	return s.sendPacket("4" + string(text))
}

// Close closes the session and never waits for the network: a websocket is closed at
// once (a writer stuck on a slow client holds its lock), a polling client gets what was
// queued and a close packet with its next poll.
func (s *Session) Close() error {
	s.close(reasonServerClose)
	return nil
}

func (s *Session) sendPacket(p string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if ws := s.ws; ws != nil {
		s.mu.Unlock()
		if err := ws.WriteText([]byte(p)); err != nil {
			s.close("transport error")
			return err
		}
		return nil
	}
	if len(s.out) >= s.srv.opts.MaxQueued {
		s.mu.Unlock()
		s.close(ReasonQueueFull)
		return ErrQueueFull
	}
	s.out = append(s.out, p)
	if s.wake != nil {
		select {
		case s.wake <- "":
		default:
		}
	}
	s.mu.Unlock()
	return nil
}

// ReasonQueueFull is the Reason of a session closed because its client stopped taking
// what was sent (MaxQueued packets unpolled, or queued behind an upgrade's backlog).
const ReasonQueueFull = "poll queue full"

// Close reasons the engine treats apart.
const (
	reasonClientClose = "client close" // a close packet from the client
	reasonPingTimeout = "ping timeout"
	reasonParseError  = "parse error" // a packet of no Engine.IO type
	reasonServerClose = "server close"
)

func (s *Session) close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.reason = true, reason
	s.heartbeat.Stop()
	ws, probe, release := s.ws, s.probe, s.release
	s.probe, s.release = nil, nil
	s.signal()
	// A polling client gets what was queued before the close (an error that explains it,
	// say) and the close packet: the waiting poll now, else the next one within
	// PingTimeout, until which the session stays findable: when the server closed it
	// (Close). Otherwise, as engine.io does, a waiting poll gets a noop when the client
	// closed the session, else what was queued and the close packet, and the session is
	// gone at once (a client that timed out or broke the protocol gets 400 next).
	linger := false
	if ws == nil && reason == reasonClientClose {
		s.out = nil
		if s.wake != nil {
			select {
			case s.wake <- "6":
			default:
			}
		}
	} else if ws == nil {
		// What is queued and the close packet go in two answers, as engine.io sends
		// them: socket.io-client 4 hands a payload's events on a tick later and drops
		// those a close in the same payload overtook (a terminated client never saw
		// jetsocket:terminated). The waiting poll, or the next, takes the queue from
		// s.out (it may have been woken for it already and not have taken it yet); the
		// close packet lingers for the poll after, when the server closed the session.
		serverClose := reason == reasonServerClose
		s.final, linger = "1", serverClose
		if s.wake != nil {
			wake := ""
			if len(s.out) == 0 {
				wake = "1"
			}
			select {
			case s.wake <- wake:
				if wake != "" {
					linger = false
				}
			default:
			}
		} else if !serverClose {
			s.out = nil
		}
		if !linger {
			s.final = ""
		}
	} else {
		s.out = nil
	}
	s.mu.Unlock()
	s.srv.mu.Lock()
	s.srv.open--
	s.srv.mu.Unlock()
	if ws != nil {
		_ = ws.Close()
	}
	if probe != nil {
		_ = probe.Close()
	}
	if release != nil {
		release()
	}
	if linger {
		time.AfterFunc(s.srv.opts.PingTimeout, s.forget)
		return
	}
	s.forget()
}

// forget removes the session from the server.
func (s *Session) forget() {
	s.srv.mu.Lock()
	if s.srv.sessions[s.id] == s {
		delete(s.srv.sessions, s.id)
	}
	s.srv.mu.Unlock()
}

// onHeartbeat sends a ping, or closes the session whose last ping got no pong within
// PingTimeout.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.pingPending {
		s.mu.Unlock()
		s.close(reasonPingTimeout)
		return
	}
	s.pingPending = true
	s.heartbeat.Reset(s.srv.opts.PingTimeout)
	s.mu.Unlock()
	_ = s.sendPacket("2")
}

func (s *Session) onPong() {
	s.mu.Lock()
	if s.pingPending && !s.closed {
		s.pingPending = false
		s.heartbeat.Reset(s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
}

// signal tells a reader waiting with no websocket to look again. Under mu.
func (s *Session) signal() {
	select {
	case s.inWake <- struct{}{}: // nil: nobody has waited
	default:
	}
}

// wakeup is the channel a reader with no websocket waits on, made on first use: a
// session that opened on a websocket never needs one. Under mu.
func (s *Session) wakeup() chan struct{} {
	if s.inWake == nil {
		s.inWake = make(chan struct{}, 1)
	}
	return s.inWake
}

// NextReader returns the next message from the client, in order, whatever the
// transport; binary reports a binary message (its reader is empty on polling). Call it
// from one goroutine at a time. It returns an error once the session is closed.
func (s *Session) NextReader() (binary bool, r io.ReadCloser, err error) {
	return s.next(true)
}

// NextReaderStep is NextReader reading at most one websocket message: r is nil when
// that message was the engine's own (a pong), or when nothing came in on polling. The
// socket layer's workers call it after WaitInput, then again while Ready.
func (s *Session) NextReaderStep() (binary bool, r io.ReadCloser, err error) {
	return s.next(false)
}

// waiter is a websocket that can be waited on without reading (engine.WebSocket).
type waiter interface {
	WaitReadable() error
	Ready() bool
}

// WaitInput waits until a message is in, the websocket has something to read, or the
// session ended, in a few small stack frames (see engine.WebSocket.WaitReadable). It
// reports false when it cannot wait that way (a TLS websocket): read with NextReader.
func (s *Session) WaitInput() bool {
	for {
		s.mu.Lock()
		if len(s.in) > 0 || s.closed {
			s.mu.Unlock()
			return true
		}
		ws := s.ws
		if ws == nil {
			wake := s.wakeup()
			s.mu.Unlock()
			<-wake
			continue
		}
		s.mu.Unlock()
		w, ok := ws.(waiter)
		if !ok {
			return false
		}
		s.setReadDeadline(ws)
		err := w.WaitReadable()
		if errors.Is(err, engine.ErrNoWait) {
			return false
		}
		if err != nil { // the deadline passed, or the websocket closed: as a read would
			s.close("transport close")
		}
		return true
	}
}

// IdleWebSocket is the session's websocket while it is on one (the socket layer's own)
// with nothing queued, so that a poller can wait for its client (engine.WebSocket.Watch);
// else nil.
func (s *Session) IdleWebSocket() *engine.WebSocket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.in) > 0 {
		return nil
	}
	ws, _ := s.ws.(*engine.WebSocket)
	return ws
}

// Ready reports whether NextReaderStep has a message without waiting for the network.
func (s *Session) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.in) > 0 {
		return true
	}
	w, ok := s.ws.(waiter)
	return ok && w.Ready()
}

func (s *Session) next(wait bool) (binary bool, r io.ReadCloser, err error) {
	for {
		s.mu.Lock()
		if len(s.in) > 0 {
			m := s.in[0]
			s.in[0] = nil
			s.in = s.in[1:]
			s.inBytes -= len(m)
			s.mu.Unlock()
			if len(m) > 0 && m[0] == 'b' {
				return true, io.NopCloser(bytes.NewReader(nil)), nil
			}
			return false, io.NopCloser(bytes.NewReader(m[1:])), nil
		}
		if s.closed {
			s.mu.Unlock()
			return false, nil, ErrClosed
		}
		ws := s.ws
		if ws == nil {
			if !wait {
				s.mu.Unlock()
				return false, nil, nil
			}
			wake := s.wakeup()
			s.mu.Unlock()
			<-wake
			continue
		}
		s.mu.Unlock()
		binary, r, err := s.readWebsocket(ws)
		if err != nil {
			s.close("transport close")
			return false, nil, ErrClosed
		}
		if r != nil {
			return binary, io.NopCloser(r), nil
		}
		if !wait {
			return false, nil, nil
		}
	}
}

// setReadDeadline: pings come every PingInterval; a client silent past that plus
// PingTimeout is gone.
func (s *Session) setReadDeadline(ws WebSocket) {
	_ = ws.SetReadDeadline(time.Now().Add(s.srv.opts.PingInterval + 2*s.srv.opts.PingTimeout))
}

// readWebsocket reads one websocket message: a message packet's reader (after its type
// byte), or nil for a packet the engine handled itself.
func (s *Session) readWebsocket(ws WebSocket) (binary bool, r io.Reader, err error) {
	s.setReadDeadline(ws)
	binary, r, err = ws.NextMessage()
	if err != nil {
		return false, nil, err
	}
	if binary {
		return true, r, nil
	}
	var t [1]byte
	if n, _ := io.ReadFull(r, t[:]); n == 0 {
		return false, nil, nil
	}
	switch t[0] {
	case '4':
		return false, r, nil
	case '3':
		s.onPong()
	case '1':
		s.close(reasonClientClose)
	case '0', '2', '5', '6':
		// Ignored here, as engine.io does (2 is a v3 client's ping).
	default:
		s.close(reasonParseError) // not an Engine.IO packet: engine.io closes too
	}
	return false, nil, nil
}

// poll answers a long-polling GET with every queued packet, waiting for one if none is.
func (s *Session) poll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed && s.final != "" && len(s.out) > 0 {
		answer := strings.Join(s.out, "\x1e") // what was sent before the close; the close packet next
		s.out = nil
		s.mu.Unlock()
		writePoll(w, answer)
		return
	}
	if s.closed && s.final != "" {
		final := s.final
		s.final = ""
		s.mu.Unlock()
		s.forget()
		writePoll(w, final)
		return
	}
	if s.closed || s.ws != nil || s.swapping || s.wake != nil {
		overlap := s.wake != nil
		s.mu.Unlock()
		httpError(w, errBadRequest, "Bad request")
		if overlap { // the protocol closes a session that polls twice at once
			s.close("overlapping poll")
		}
		return
	}
	var answer string
	// During an upgrade a poll is answered at once (a noop when nothing is queued): the
	// client sends its upgrade packet only once its last poll returned, and that poll can
	// reach us after the probe did.
	if len(s.out) == 0 && !s.probing {
		wake := make(chan string, 1)
		s.wake = wake
		s.mu.Unlock()
		select {
		case answer = <-wake:
		case <-r.Context().Done():
			s.mu.Lock()
			s.wake = nil
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.wake = nil
	}
	if answer == "" {
		for i, p := range s.out {
			if i > 0 {
				answer += "\x1e"
			}
			answer += p
		}
		s.out = nil
	}
	s.mu.Unlock()
	if answer == "" {
		answer = "6"
	}
	writePoll(w, answer)
}

func writePoll(w http.ResponseWriter, answer string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	_, _ = io.WriteString(w, answer)
}

// post reads packets separated by \x1e. A POST is accepted during an upgrade too: the
// client sends its upgrade packet only once its pending POSTs are answered, so the
// messages of both transports stay in order.
func (s *Session) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.srv.opts.MaxPayload)+1))
	if err != nil || len(body) > s.srv.opts.MaxPayload {
		httpError(w, errBadRequest, "Bad request")
		s.close("payload too large")
		return
	}
	s.mu.Lock()
	bad := s.closed || s.ws != nil || s.swapping
	s.mu.Unlock()
	if bad {
		httpError(w, errBadRequest, "Bad request")
		return
	}
	for _, p := range bytes.Split(body, []byte{0x1e}) {
		if len(p) == 0 {
			continue
		}
		switch p[0] {
		case '4', 'b':
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				break
			}
			if len(s.in) >= s.srv.opts.MaxQueued || s.inBytes+len(p) > s.srv.opts.MaxQueuedBytes {
				s.mu.Unlock()
				s.close("flood")
				s.srv.opts.Refuse(w, http.StatusTooManyRequests, errs.CodeInboundQueueFull,
					"too much sent and not yet read: at most "+strconv.Itoa(s.srv.opts.MaxQueued)+
						" messages or "+strconv.Itoa(s.srv.opts.MaxQueuedBytes)+" bytes; the session is closed")
				return
			}
			s.in = append(s.in, p)
			s.inBytes += len(p)
			s.signal()
			s.mu.Unlock()
		case '3':
			s.onPong()
		case '1':
			s.close(reasonClientClose)
		case '0', '2', '5', '6':
		default:
			s.close(reasonParseError) // not an Engine.IO packet: engine.io closes too
			httpError(w, errBadRequest, "Bad request")
			return
		}
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "ok")
}

// upgrade takes a websocket for a polling session: 2probe/3probe, then the client's 5.
// A websocket for a session that is already upgrading or upgraded is accepted and closed
// at once, as engine.io does.
func (s *Session) upgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed, busy := s.closed, s.ws != nil || s.probing
	if !closed && !busy {
		s.probing = true
	}
	s.mu.Unlock()
	if closed {
		httpError(w, errUnknownSid, "Session ID unknown")
		return
	}
	if busy {
		if ws, err := s.srv.opts.Upgrade(w, r); err == nil {
			_ = ws.Close()
		}
		return
	}
	endProbe := func() {
		s.mu.Lock()
		s.probing = false
		s.mu.Unlock()
	}
	release, ok := s.srv.admit(w, r)
	if !ok {
		endProbe()
		return
	}
	if release == nil {
		release = func() {}
	}
	ws, err := s.srv.opts.Upgrade(w, r)
	if err != nil {
		endProbe()
		release()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		release()
		return
	}
	s.probe = ws // closed by close from now on
	s.mu.Unlock()
	go s.runProbe(ws, release)
}

// runProbe reads an upgrading websocket until the client's upgrade packet, then hands
// the websocket over (finishUpgrade). The probe may fail or time out (UpgradeTimeout,
// for the whole upgrade: a message now and then does not keep it alive); the session
// stays on polling.
func (s *Session) runProbe(ws WebSocket, release func()) {
	defer release()
	fail := func() {
		s.mu.Lock()
		if s.probe == ws {
			s.probe, s.probing = nil, false
		}
		s.mu.Unlock()
		_ = ws.Close()
	}
	_ = ws.SetReadDeadline(time.Now().Add(s.srv.opts.UpgradeTimeout))
	for {
		binary, r, err := ws.NextMessage()
		if err != nil {
			fail()
			return
		}
		if binary {
			continue
		}
		p, err := io.ReadAll(io.LimitReader(r, 16))
		if err != nil {
			fail()
			return
		}
		switch string(p) {
		case "2probe":
			if ws.WriteText([]byte("3probe")) != nil {
				fail()
				return
			}
			// Release a waiting poll so the client can pause polling.
			s.mu.Lock()
			if s.wake != nil {
				select {
				case s.wake <- "6":
				default:
				}
			}
			s.mu.Unlock()
		case "5":
			s.finishUpgrade(ws)
			return
		}
	}
}

// finishUpgrade writes the packets queued for polling to the websocket, then makes it
// the session's transport. The writes are made without holding mu: a client that
// stopped reading must not hold up the senders, who queue behind the backlog meanwhile
// (bounded by MaxQueued: a full queue closes the session, and the close closes the
// websocket under the stuck write).
func (s *Session) finishUpgrade(ws WebSocket) {
	s.mu.Lock()
	if s.closed || s.probe != ws {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.swapping = true
	if s.wake != nil {
		select {
		case s.wake <- "6":
		default:
		}
	}
	for len(s.out) > 0 {
		batch := s.out
		s.out = nil
		s.mu.Unlock()
		for _, p := range batch {
			if ws.WriteText([]byte(p)) != nil {
				s.close("transport error")
				return
			}
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
	}
	s.ws, s.probe, s.probing, s.swapping = ws, nil, false, false
	s.signal() // NextReader reads the websocket from now on
	s.mu.Unlock()
}
