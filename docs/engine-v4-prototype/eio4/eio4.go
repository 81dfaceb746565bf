//go:build ignore

// Package eio4 is a prototype Engine.IO protocol v4 server (socket.io-client 3.x/4.x):
// long-polling with the v4 payload format, websocket, the polling-to-websocket upgrade
// and server-initiated heartbeats. It carries text messages only (Jetsocket refuses
// binary packets anyway).
//
// Costs per idle connection, by design: a session struct, one runtime timer for the
// heartbeat (no goroutine), and on a websocket one reader goroutine plus gorilla's conn
// with a 1 KiB read buffer; write buffers come from a shared pool for the length of
// one frame. A polling session has no goroutine between requests.
package eio4

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Handler receives one session's messages. Calls for one session never overlap.
type Handler interface {
	OnMessage(text string)
	OnClose(reason string)
}

// Options configures a Server. OnOpen is required.
type Options struct {
	PingInterval time.Duration // default 25s
	PingTimeout  time.Duration // default 20s
	MaxPayload   int           // bytes per POST or websocket message; default 1e6
	CheckOrigin  func(*http.Request) bool
	OnOpen       func(*Session) Handler
}

// Server serves Engine.IO v4 at one path.
type Server struct {
	opts     Options
	upgrader websocket.Upgrader

	mu       sync.Mutex
	sessions map[string]*Session
}

var writeBuffers = &sync.Pool{}

func NewServer(o Options) *Server {
	if o.PingInterval == 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 1e6
	}
	return &Server{
		opts: o,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 4096,
			WriteBufferPool: writeBuffers,
			CheckOrigin:     o.CheckOrigin,
		},
		sessions: make(map[string]*Session),
	}
}

// Engine.IO v4 error codes, answered as JSON with status 400.
const (
	errUnknownTransport = 0
	errUnknownSid       = 1
	errBadHandshake     = 2
	errBadRequest       = 3
	errUnsupportedEIO   = 5
)

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(w, `{"code":`+strconv.Itoa(code)+`,"message":"`+msg+`"}`)
}

// Count is the number of open sessions.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		httpError(w, errUnsupportedEIO, "Unsupported protocol version")
		return
	}
	tr := q.Get("transport")
	if tr != "polling" && tr != "websocket" {
		httpError(w, errUnknownTransport, "Transport unknown")
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if tr == "websocket" {
			s.openWebsocket(w, r)
		} else if r.Method == http.MethodGet {
			s.openPolling(w, r)
		} else {
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

func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) newSession(r *http.Request, upgrades []string) *Session {
	sess := &Session{srv: s, id: newID(), query: r.URL.Query()}
	open, _ := json.Marshal(map[string]any{
		"sid": sess.id, "upgrades": upgrades,
		"pingInterval": s.opts.PingInterval.Milliseconds(),
		"pingTimeout":  s.opts.PingTimeout.Milliseconds(),
		"maxPayload":   s.opts.MaxPayload,
	})
	sess.queue = []string{"0" + string(open)}
	sess.h = s.opts.OnOpen(sess)
	s.mu.Lock()
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	sess.heartbeat = time.AfterFunc(s.opts.PingInterval, sess.onHeartbeat)
	return sess
}

func (s *Server) openPolling(w http.ResponseWriter, r *http.Request) {
	sess := s.newSession(r, []string{"websocket"})
	sess.poll(w, r) // answers with the OPEN packet at once
}

func (s *Server) openWebsocket(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // gorilla has answered
	}
	c := &wsConn{ws: ws}
	sess := s.newSession(r, []string{})
	sess.mu.Lock()
	sess.ws = c
	q := sess.queue
	sess.queue = nil
	sess.mu.Unlock()
	for _, p := range q {
		if c.write(p) != nil {
			sess.close("transport error")
			return
		}
	}
	go sess.readWebsocket(c, false)
}

// Session is one Engine.IO session.
type Session struct {
	srv   *Server
	id    string
	query url.Values
	h     Handler

	hmu sync.Mutex // serializes Handler calls

	mu          sync.Mutex
	closed      bool
	ws          *wsConn     // set once the session is on a websocket
	probing     bool        // a websocket upgrade is under way
	queue       []string    // packets for the next poll
	wake        chan string // a waiting poll's: "" to look at queue, else a packet to answer with
	heartbeat   *time.Timer
	pingPending bool
}

func (s *Session) ID() string        { return s.id }
func (s *Session) Query() url.Values { return s.query }

// Send sends a message packet.
func (s *Session) Send(text string) { s.sendPacket("4" + text) }

// Close closes the session (the client sees a close packet when it can).
func (s *Session) Close() {
	s.sendPacket("1")
	s.close("server close")
}

func (s *Session) sendPacket(p string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if ws := s.ws; ws != nil {
		s.mu.Unlock()
		if ws.write(p) != nil {
			s.close("transport error")
		}
		return
	}
	s.queue = append(s.queue, p)
	if s.wake != nil {
		select {
		case s.wake <- "":
		default:
		}
	}
	s.mu.Unlock()
}

func (s *Session) close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.heartbeat.Stop()
	ws := s.ws
	if s.wake != nil {
		select {
		case s.wake <- "1":
		default:
		}
	}
	s.queue = nil
	s.mu.Unlock()
	if ws != nil {
		ws.close()
	}
	s.srv.mu.Lock()
	delete(s.srv.sessions, s.id)
	s.srv.mu.Unlock()
	// After the message being handled, if any: a handler may close its own session, and
	// OnClose must not run inside OnMessage.
	go func() {
		s.hmu.Lock()
		defer s.hmu.Unlock()
		s.h.OnClose(reason)
	}()
}

// onHeartbeat runs on the heartbeat timer: it sends a ping, or closes the session whose
// previous ping got no pong within PingTimeout.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.pingPending {
		s.mu.Unlock()
		s.close("ping timeout")
		return
	}
	s.pingPending = true
	s.heartbeat.Reset(s.srv.opts.PingTimeout)
	s.mu.Unlock()
	s.sendPacket("2")
}

func (s *Session) onPong() {
	s.mu.Lock()
	if s.pingPending && !s.closed {
		s.pingPending = false
		s.heartbeat.Reset(s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
}

// onPacket handles one packet from the client, on any transport.
func (s *Session) onPacket(p string) {
	if p == "" {
		return
	}
	switch p[0] {
	case '1':
		s.close("client close")
	case '3':
		s.onPong()
	case '4':
		s.hmu.Lock()
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if !closed { // nothing after a close, even later in the same payload
			s.h.OnMessage(p[1:])
		}
		s.hmu.Unlock()
	}
	// 2 (a v3 client's ping), 5 (upgrade, handled on the websocket) and 6 are ignored.
}

// poll answers a long-polling GET with every queued packet, waiting for one if none is.
func (s *Session) poll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed || s.ws != nil || s.wake != nil {
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
	if len(s.queue) == 0 && !s.probing {
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
		answer = strings.Join(s.queue, "\x1e")
		s.queue = nil
	}
	s.mu.Unlock()
	if answer == "" {
		answer = "6"
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	_, _ = io.WriteString(w, answer)
}

// post reads packets separated by \x1e. A POST is accepted during an upgrade too: the
// client sends its upgrade packet only once its pending POSTs are answered, so order is
// kept.
func (s *Session) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.srv.opts.MaxPayload)+1))
	if err != nil || len(body) > s.srv.opts.MaxPayload {
		httpError(w, errBadRequest, "Bad request")
		s.close("payload too large")
		return
	}
	s.mu.Lock()
	bad := s.closed || s.ws != nil
	s.mu.Unlock()
	if bad {
		httpError(w, errBadRequest, "Bad request")
		return
	}
	for _, p := range strings.Split(string(body), "\x1e") {
		s.onPacket(p)
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "ok")
}

// upgrade takes a websocket for a polling session: 2probe/3probe, then the client's 5.
func (s *Session) upgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := !s.closed && s.ws == nil && !s.probing
	if ok {
		s.probing = true
	}
	s.mu.Unlock()
	if !ok {
		httpError(w, errBadRequest, "Bad request")
		return
	}
	ws, err := s.srv.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.mu.Lock()
		s.probing = false
		s.mu.Unlock()
		return
	}
	go s.readWebsocket(&wsConn{ws: ws}, true)
}

// readWebsocket reads c until it fails. probe: c is an upgrade that starts with a probe.
func (s *Session) readWebsocket(c *wsConn, probe bool) {
	c.ws.SetReadLimit(int64(s.srv.opts.MaxPayload))
read:
	for {
		// Pings come every PingInterval; a client silent past that plus PingTimeout is
		// gone, and the heartbeat timer closes the session.
		_ = c.ws.SetReadDeadline(time.Now().Add(s.srv.opts.PingInterval + 2*s.srv.opts.PingTimeout))
		mt, b, err := c.ws.ReadMessage()
		if err != nil || mt != websocket.TextMessage {
			break
		}
		p := string(b)
		if probe {
			switch p {
			case "2probe":
				if c.write("3probe") != nil {
					break read
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
				continue
			case "5":
				s.mu.Lock()
				if s.closed {
					s.mu.Unlock()
					c.close()
					return
				}
				// Packets queued for polling go out first, in order, before any packet
				// sent after the swap: both happen under mu.
				for _, q := range s.queue {
					if c.write(q) != nil {
						break
					}
				}
				s.queue = nil
				s.ws, s.probing = c, false
				if s.wake != nil {
					select {
					case s.wake <- "6":
					default:
					}
				}
				s.mu.Unlock()
				probe = false
				continue
			default:
				continue
			}
		}
		s.onPacket(p)
	}
	s.mu.Lock()
	mine := s.ws == c
	if !mine {
		s.probing = false
	}
	s.mu.Unlock()
	c.close()
	if mine {
		s.close("transport close")
	}
}

// wsConn is a websocket; writes are serialized and bounded by a deadline.
type wsConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

var errWrite = errors.New("eio4: websocket write failed")

func (c *wsConn) write(p string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
		return errors.Join(errWrite, err)
	}
	return nil
}

func (c *wsConn) close() { _ = c.ws.Close() }
