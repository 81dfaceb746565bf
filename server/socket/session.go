package socket

import (
	"io"

	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/tokens"
)

// Session is an Engine.IO session as the socket layer drives it: what it needs from an
// engine, whichever one a client uses. go-socket.io's v3 sessions (session3) and our
// eio4's (*eio4.Session) implement it; the values an engine learnt from the handshake
// request (client address, query token, transport) come as methods, not through the
// session's URL or address.
type Session interface {
	// ID is the Engine.IO session id.
	ID() string
	// NextReader returns the client's next message, in order, whatever the transport;
	// binary reports a binary one. One goroutine at a time; an error once the session
	// has ended. r is nil when the engine handled a frame itself (a ping): between
	// messages, a moment to hand the connection to the poller (readLoop). A reader that also has a Counted method returning true carries a
	// message the engine already counted against the connection's inbound rate.
	NextReader() (binary bool, r io.ReadCloser, err error)
	// Send sends one socket.io packet's text as an Engine.IO message: on a websocket at
	// once, on polling with the client's next poll.
	Send(text []byte) error
	// WebSocket is the websocket the session is on, which prebuilt frames may be written
	// to directly (under its write lock); nil while it is on polling.
	WebSocket() *engine.WebSocket
	// Close ends the session and never waits for the network.
	Close() error
	// Transport is the transport the handshake asked for ("polling", "websocket").
	Transport() string
	// ClientIP is the handshake's client address, as the HTTP layer resolved it
	// (engine.WithClientIP).
	ClientIP() string
	// Token is the handshake query's token ("" when it had none, or when Verified
	// carries its claims).
	Token() string
	// Verified is the claims the HTTP layer verified from the handshake's token
	// (engine.WithVerified), or nil: the socket layer then verifies Token itself.
	Verified() *tokens.Claims
	// Protocol is the socket.io protocol revision the client speaks: 4 over Engine.IO
	// v3 (socket.io-client 2.x, which is sent CONNECT unasked), 5 over Engine.IO v4
	// (3.x and 4.x, which send CONNECT, maybe with their token, and wait for it).
	Protocol() int
	// CutOff reports whether the engine closed the session because its client stopped
	// taking what was sent (a slow consumer the engine found first).
	CutOff() bool
}

// counted is a message reader that says whether the engine already counted its
// message against the connection's inbound rate (a packet handed off during a v3
// upgrade is counted as it is posted).
type counted interface{ Counted() bool }

func preCounted(r io.Reader) bool {
	c, ok := r.(counted)
	return ok && c.Counted()
}

// idleWaiter is a Session whose connection goroutine can wait for the client in a few
// small stack frames while the reading and handling run on the server's workers (eio4
// over plain TCP on Linux; engine.WebSocket.WaitReadable says why).
type idleWaiter interface {
	// WaitInput waits until NextReaderStep has something to read or the session ended;
	// false: it cannot wait that way now, read with NextReader.
	WaitInput() bool
	// Ready reports whether NextReaderStep has a message without waiting for the network.
	Ready() bool
	// IdleWebSocket is the session's websocket while it is on one with nothing queued
	// (a poller can wait for its client instead of WaitInput), else nil.
	IdleWebSocket() *engine.WebSocket
	// NextReaderStep is NextReader reading at most one websocket message; r is nil when
	// that message was the engine's own, or nothing came.
	NextReaderStep() (binary bool, r io.ReadCloser, err error)
}
