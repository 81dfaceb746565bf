package socket

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/engineio/session"
	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/tokens"
)

// Conn is one accepted socket.io connection.
//
// Everything sent to it goes through a bounded queue, so a sender never waits for the
// network: a connection whose queue is full is closed as a slow consumer instead of
// stalling the sender. A writer goroutine runs only while the queue has frames and ends
// when it is empty: an idle connection costs no goroutine, no stack and no queue buffer
// for writing (most of a server's connections are idle most of the time).
type Conn struct {
	srv    *Server
	sess   engineio.Conn
	id     string
	ip     string
	claims atomic.Pointer[tokens.Claims]

	connectedAt time.Time
	inbound     *rate.Limiter // packets accepted from the client
	flood       *rate.Limiter // packets dropped before the client is cut off
	errNotice   *rate.Limiter // jetsocket:error notices, so errors cannot flood the queue

	done      chan struct{} // closed by Close
	closeOnce sync.Once

	mu         sync.Mutex
	queue      [][]byte // socket.io packet texts not yet written
	writing    bool     // a writer goroutine is draining queue
	closing    bool     // Close was called: nothing more is queued or started
	flushClose bool     // close once queue is written (CloseAfterFlush)
	reason     string
	writers    sync.WaitGroup
}

// ID is the connection's socket id, in Pusher's form.
func (c *Conn) ID() string { return c.id }

// Claims are the connection's verified token claims.
func (c *Conn) Claims() *tokens.Claims { return c.claims.Load() }

// SetClaims replaces the claims (a token refresh).
func (c *Conn) SetClaims(cl *tokens.Claims) { c.claims.Store(cl) }

// UserID is the claims' subject.
func (c *Conn) UserID() string { return c.Claims().UserID() }

// IP is the client's address as the transport saw it.
func (c *Conn) IP() string { return c.ip }

// Done is closed when the connection closes.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Emit encodes and queues an event. It returns false when the connection is closed or
// was just closed as a slow consumer.
func (c *Conn) Emit(event string, payload any) bool {
	frame, err := EncodeEvent(event, payload)
	if err != nil {
		c.srv.log.Error("encode event", "event", event, "err", err)
		return false
	}
	return c.sendFrame(frame)
}

// SendFrame queues a packet encoded once by EncodeEvent, possibly shared by many
// connections: it must not be modified afterwards.
func (c *Conn) SendFrame(frame []byte) bool { return c.sendFrame(frame) }

// Error sends jetsocket:error {code, message}, at most a few per second.
func (c *Conn) Error(code, message string) {
	if !c.errNotice.Allow() {
		return
	}
	c.Emit(EventError, map[string]string{"code": code, "message": message})
}

func (c *Conn) ack(id int64, payload any) {
	frame, err := EncodeAck(id, payload)
	if err != nil {
		c.srv.log.Error("encode ack", "err", err)
		return
	}
	c.sendFrame(frame)
}

func (c *Conn) sendFrame(frame []byte) bool {
	c.mu.Lock()
	if c.closing || c.flushClose {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) >= c.srv.opts.SendQueue {
		queued := len(c.queue)
		c.mu.Unlock()
		c.srv.log.Warn("slow consumer disconnected", "socket_id", c.id, "user_id", c.UserID(), "queued", queued)
		c.Close(ReasonSlowConsumer)
		return false
	}
	c.queue = append(c.queue, frame)
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.writeLoop()
	}
	c.mu.Unlock()
	return true
}

// Close closes the connection now; queued packets are dropped.
func (c *Conn) Close(reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if c.reason == "" {
			c.reason = reason
		}
		c.closing = true
		c.queue = nil
		c.mu.Unlock()
		close(c.done)
		_ = c.sess.Close()
	})
}

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

// writeLoop drains the queue, then ends.
func (c *Conn) writeLoop() {
	defer c.writers.Done()
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
		c.mu.Unlock()
		for _, frame := range batch {
			if err := c.write(frame); err != nil {
				c.Close(ReasonClientGone)
				c.mu.Lock()
				c.writing = false
				c.mu.Unlock()
				return
			}
		}
	}
}

func (c *Conn) write(frame []byte) error {
	w, err := c.sess.NextWriter(session.TEXT)
	if err != nil {
		return err
	}
	if _, err := w.Write(frame); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}
