package eio3

import (
	"io"
	"sync/atomic"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/engineio/session"

	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/tokens"
)

// Session is one go-socket.io session as the socket layer drives it (it implements
// socket.Session). Its handshake's values come from the request (openInfo), not from the
// library's URL or address.
type Session struct {
	lib  engineio.Conn
	e    *Engine
	info *openInfo
	// ended: the session is over (Close, or its read ended); done: what it held in the
	// engine is released (once).
	ended atomic.Bool
	done  atomic.Bool
}

// ID is the Engine.IO session id.
func (s *Session) ID() string { return s.lib.ID() }

// NextReader returns the client's next message; a reader of a packet posted during the
// upgrade says it was counted already (Counted). r is nil when the frame was a ping its
// websocket answered (wsConn.ownPings): a moment between messages.
func (s *Session) NextReader() (bool, io.ReadCloser, error) { return s.NextReaderStep() }

// NextReaderStep reads at most one frame, as NextReader does. The socket layer's workers
// call it when the poller has seen data, then again while Ready.
func (s *Session) NextReaderStep() (bool, io.ReadCloser, error) {
	ft, r, err := s.lib.NextReader()
	if err != nil {
		// The library closed the session (the client's close packet, a ping timeout):
		// a request for its sid is for a session that has ended (Engine.alive).
		s.ended.Store(true)
		return false, nil, err
	}
	if _, ok := r.(Pinged); ok {
		return false, nil, nil
	}
	return ft == session.BINARY, r, nil
}

// IdleWebSocket is the session's websocket once its pings are answered there (it opened
// on it, or upgraded to it), so that a read takes one frame (NextReaderStep), for a
// poller to wait on; else nil.
func (s *Session) IdleWebSocket() *engine.WebSocket {
	if s.ended.Load() {
		return nil
	}
	if a, ok := s.lib.RemoteAddr().(wsAddr); ok && a.ownPings {
		return a.c
	}
	return nil
}

// Ready reports whether gorilla holds the start of the next frame already.
func (s *Session) Ready() bool {
	ws := s.WebSocket()
	return ws != nil && ws.Ready()
}

// WaitInput is false: where no poller waits, the session is read in a loop as before.
func (s *Session) WaitInput() bool { return false }

// Send writes one message through the library's session.
func (s *Session) Send(text []byte) error {
	w, err := s.lib.NextWriter(session.TEXT)
	if err != nil {
		return err
	}
	if _, err := w.Write(text); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// WebSocket: the library does not expose a session's transport; the address of the
// current one leads to it (wsAddr), from the start or once an upgrade swapped it in.
func (s *Session) WebSocket() *engine.WebSocket { return websocketOf(s.lib.RemoteAddr()) }

// Close closes the session and releases what it holds in the engine: its place in the
// library's map (later requests for its sid are 400 invalid_sid), an upgrade's
// websocket that never finished, and its place in the per-IP count.
func (s *Session) Close() error {
	s.ended.Store(true)
	err := s.lib.Close()
	if s.done.CompareAndSwap(false, true) {
		s.e.end(s)
	}
	return err
}

func (s *Session) Transport() string { return s.info.transport }
func (s *Session) ClientIP() string  { return s.info.ip }
func (s *Session) Token() string     { return s.info.token }

// Verified is the claims the HTTP layer verified from the handshake's token, or nil.
func (s *Session) Verified() *tokens.Claims { return s.info.claims }

// Protocol: socket.io-client 2.x speaks socket.io protocol 4 over Engine.IO v3.
func (s *Session) Protocol() int { return 4 }

// CutOff: this engine never closes a session for its client's slowness; the socket
// layer's send queue does.
func (s *Session) CutOff() bool { return false }
