package socket

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/server/connstate"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/server/wire"
	"github.com/jetsocket/jetsocket/tokens"
)

// Conn is one accepted socket.io connection.
//
// A sender never waits for the network. On a websocket over plain TCP with nothing
// queued, a frame is written to the socket at once, in the sender's call, by a write
// that does not wait (the hub's fan-out to thousands of subscribers costs one syscall
// each, no goroutine, no per-recipient framing). Whatever the socket does not take at
// once, and everything on polling or TLS, goes through a bounded queue drained by a
// writer goroutine; a connection whose queue is full is closed as a slow consumer
// instead of stalling the sender. The writer runs only while the queue has frames and
// writes all of them with one writev: an idle connection costs no goroutine, no stack
// and no queue buffer for writing (most of a server's connections are idle most of the
// time).
type Conn struct {
	srv    *Server
	sess   Session
	id     string
	claims atomic.Pointer[tokens.Claims]
	v5     bool // a socket.io-client 3.x/4.x connection (socket.io protocol 5)
	// pid is the private session id of a connection that can be restored (socket.io 4.x
	// connection state recovery, recovery.go); recovered: it was.
	pid       string
	recovered bool
	finish    func()        // a restore's replay, sent once the connection is set up
	ended     chan struct{} // closed once a restorable connection is gone and retained

	connectedAt time.Time
	inbound     *rate.Limiter // packets accepted from the client
	// Made on first use (lazyLimiter): most connections never go over the rate or
	// cause an error, and each limiter is about 100 bytes held for the connection's life.
	flood     atomic.Pointer[rate.Limiter] // packets dropped before the client is cut off
	errNotice atomic.Pointer[rate.Limiter] // jetsocket:error notices, so errors cannot flood the queue

	ctx       closeCtx // cancelled by Close
	closeOnce sync.Once

	mu         sync.Mutex
	ws         *engine.WebSocket // the websocket frames are written to directly, once known
	wsState    uint8             // wsUnknown until the session is on a websocket
	queue      []wire.Frame      // not yet written
	rlog       *deliveryLog      // what was written, for a restore; nil when it cannot be restored
	writing    bool              // a writer goroutine is draining queue
	closing    bool              // Close was called: nothing more is queued or started
	flushClose bool              // close once queue is written (CloseAfterFlush)
	reason     string
	writers    sync.WaitGroup

	// state is the protocol's state of the connection (server/protocol fills it), and
	// chans its channels as the hub keeps them: on the connection, so that no event
	// looks them up in a registry.
	state connstate.State
	chans hub.ConnChannels
}

// ID is the connection's socket id, in Pusher's form.
func (c *Conn) ID() string { return c.id }

// Claims are the connection's verified token claims.
func (c *Conn) Claims() *tokens.Claims { return c.claims.Load() }

// SetClaims replaces the claims (a token refresh).
func (c *Conn) SetClaims(cl *tokens.Claims) { c.claims.Store(cl) }

// UserID is the claims' subject.
func (c *Conn) UserID() string { return c.Claims().UserID() }

// ConnState is the protocol's state of the connection (connstate).
func (c *Conn) ConnState() *connstate.State { return &c.state }

// HubChannels is the connection's channels as the hub keeps them.
func (c *Conn) HubChannels() *hub.ConnChannels { return &c.chans }

// IP is the client's address: as the HTTP layer resolved it (WithClientIP), else the
// TCP peer's.
func (c *Conn) IP() string { return c.sess.ClientIP() }

// Context is cancelled when the connection closes: work done for the connection (Redis
// calls, a handler's own I/O) stops with it.
func (c *Conn) Context() context.Context { return &c.ctx }

// The session's transport, as far as direct writes go.
const (
	wsUnknown  uint8 = iota // polling, maybe upgrading: look again next time
	wsDirect                // c.ws is set
	wsIndirect              // a websocket over TLS: always through the session
)

// websocket returns the websocket to write frames to directly, or nil. Under mu.
func (c *Conn) websocket() *engine.WebSocket {
	if c.wsState == wsUnknown {
		if ws := c.sess.WebSocket(); ws != nil {
			if ws.Direct() {
				c.ws, c.wsState = ws, wsDirect
			} else {
				c.wsState = wsIndirect
			}
		}
	}
	return c.ws
}

// Emit encodes and queues an event. It returns false when the connection is closed or
// was just closed as a slow consumer.
func (c *Conn) Emit(event string, payload any) bool {
	frame, err := wire.EncodeEvent(event, payload)
	if err != nil {
		c.srv.log.Error("encode event", "event", event, "err", err)
		return false
	}
	return c.sendFrame(wire.NewFrame(frame))
}

// SendFrame sends a frame, possibly shared by many connections. It never waits for the
// network; it returns false when the connection is closed or was just closed as a slow
// consumer.
func (c *Conn) SendFrame(f wire.Frame) bool { return c.sendFrame(f) }

// Error sends jetsocket:error {code, message}, at most a few per second.
func (c *Conn) Error(code, message string) {
	if !lazyLimiter(&c.errNotice, 5, 10).Allow() {
		return
	}
	c.Emit(EventError, map[string]string{"code": code, "message": message})
}

func (c *Conn) ack(id int64, payload any) {
	frame, err := wire.EncodeAck(id, payload)
	if err != nil {
		c.srv.log.Error("encode ack", "err", err)
		return
	}
	c.sendFrame(wire.NewFrame(frame))
}

func (c *Conn) sendFrame(f wire.Frame) bool {
	c.mu.Lock()
	if c.closing || c.flushClose {
		c.mu.Unlock()
		return false
	}
	if c.rlog != nil {
		if p := f.Pub(); p != nil {
			c.rlog.record(p)
			f = p.WithOffset()
		}
	}
	if !c.writing && len(c.queue) == 0 {
		// Nothing ahead of f: write it now if the websocket is free (TryLock fails only
		// while a pong or another frame is being written).
		if ws := c.websocket(); ws != nil && ws.TryLockWrites() {
			n := ws.WriteNow(f.Bytes())
			if n < len(f.Bytes()) {
				// The socket is full: the writer finishes the frame, and the write
				// lock stays held until it has, so nothing lands in the middle of it.
				c.startWriter(f.Bytes()[n:])
			} else {
				ws.UnlockWrites()
			}
			c.mu.Unlock()
			return true
		}
	}
	if len(c.queue) >= c.srv.opts.SendQueue {
		queued := len(c.queue)
		c.mu.Unlock()
		c.srv.log.Warn("slow consumer disconnected", "socket_id", c.id, "user_id", c.UserID(), "queued", queued)
		c.Close(ReasonSlowConsumer)
		return false
	}
	c.queue = append(c.queue, f)
	if !c.writing {
		c.startWriter(nil)
	}
	c.mu.Unlock()
	return true
}

// startWriter starts the writer goroutine; rest is the tail of a frame that was partly
// written directly, with the websocket's write lock still held. Under mu.
func (c *Conn) startWriter(rest []byte) {
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop(rest)
}

// Close closes the connection now; queued packets are dropped.
func (c *Conn) Close(reason string) {
	c.closeOnce.Do(func() {
		// A v4 session closes itself when its client stops taking packets (a polling
		// client that stopped polling, an upgrade whose websocket is not read); the
		// writer and the read loop then see a transport gone: a slow consumer.
		if reason == ReasonClientGone && c.cutOffByEngine() {
			reason = ReasonSlowConsumer
			c.srv.log.Warn("slow consumer disconnected", "socket_id", c.id, "user_id", c.UserID(), "queued", "engine")
		}
		c.mu.Lock()
		if c.reason == "" {
			c.reason = reason
		}
		c.closing = true
		c.queue = nil
		c.mu.Unlock()
		c.ctx.cancel()
		_ = c.sess.Close()
	})
}

// discard ends a connection that never served (a restore undone) without closing its
// Engine.IO session, which goes on to serve a fresh one.
func (c *Conn) discard() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.rlog = nil
	c.mu.Unlock()
	c.ctx.cancel()
}

func (c *Conn) cutOffByEngine() bool { return c.sess.CutOff() }

// CloseAfterFlush closes the connection once what is queued now has been written;
// nothing queued later is sent.
func (c *Conn) CloseAfterFlush(reason string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.flushClose = true
	idle := !c.writing
	c.mu.Unlock()
	if idle {
		c.Close(reason)
	}
}

func (c *Conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// waitWriter waits for a running writer to end; only after Close, which stops new ones.
func (c *Conn) waitWriter() { c.writers.Wait() }

// writeLoop finishes a partly written frame (rest, under the websocket's write lock),
// drains the queue, then ends.
func (c *Conn) writeLoop(rest []byte) {
	defer c.writers.Done()
	if rest != nil {
		err := c.ws.WriteFrames(net.Buffers{rest})
		c.ws.UnlockWrites()
		if err != nil {
			c.writeFailed()
			return
		}
	}
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue = nil
		if len(batch) == 0 || c.closing {
			c.writing = false
			flushClose := c.flushClose && !c.closing
			c.mu.Unlock()
			if flushClose {
				c.Close(c.closeReason())
			}
			return
		}
		ws := c.websocket()
		c.mu.Unlock()
		if err := c.writeBatch(ws, batch); err != nil {
			c.writeFailed()
			return
		}
	}
}

// writeBatch writes frames in order: on a direct websocket with one writev, else one
// by one through the Engine.IO session.
func (c *Conn) writeBatch(ws *engine.WebSocket, batch []wire.Frame) error {
	if ws != nil {
		bufs := make(net.Buffers, len(batch))
		for i, f := range batch {
			bufs[i] = f.Bytes()
		}
		ws.LockWrites()
		defer ws.UnlockWrites()
		return ws.WriteFrames(bufs)
	}
	for _, f := range batch {
		if err := c.sess.Send(f.Text()); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) writeFailed() {
	c.Close(ReasonClientGone)
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
}

// lazyLimiter returns *p, made with limit and burst on first use. A limiter made late
// starts full, as one made at connect would be by then unless it had been used.
func lazyLimiter(p *atomic.Pointer[rate.Limiter], limit rate.Limit, burst int) *rate.Limiter {
	if l := p.Load(); l != nil {
		return l
	}
	l := rate.NewLimiter(limit, burst)
	if p.CompareAndSwap(nil, l) {
		return l
	}
	return p.Load()
}
