package pusherproto

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket/engine"
	"github.com/jetsocket/jetsocket/server/wire"
)

// Tuning of a connection's writes.
const (
	// writeWait bounds one write: a client that takes longer is gone or a slow consumer.
	writeWait = 10 * time.Second
	// closeWait is how long a closing connection waits for the client's close frame
	// before dropping the TCP connection: closing with unread input would reset it and
	// could lose the close code on the way.
	closeWait = 2 * time.Second
)

var _ hub.Conn = (*Conn)(nil)

// Conn is one Pusher protocol connection.
//
// Writes never wait for the network in the sender's call: messages go into a bounded
// queue drained by a writer goroutine that runs only while the queue has messages (an
// idle connection has no writer). A connection whose queue is full is closed as a slow
// consumer. One goroutine reads.
type Conn struct {
	svc *Service
	ws  *websocket.Conn
	rd  engine.Readiness // waits for the client on a small stack (Service.read)
	// watcher: the poller's wait for the client (Service.watchClient); Shut before closing.
	watcher engine.Watcher
	id      string
	ip      string

	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	seen          atomic.Int64 // unix nanos of the last message from the client
	clientEvents  *rate.Limiter
	subscribeRate *rate.Limiter
	errNotice     *rate.Limiter // pusher:error notices, so bad input cannot flood the queue

	mu   sync.Mutex
	user string // signed in as (pusher:signin); empty: anonymous
	// userCounted: the sign-in holds one of user's MAX_CONNECTIONS_PER_USER.
	userCounted bool
	members     map[string]string // presence channel → this connection's member id there
	queue       [][]byte
	writing     bool
	closing     bool // nothing more is queued
	code        int  // close code to send once the queue is written
	reason      string
	activity    *time.Timer
	pinged      bool
	signin      *time.Timer

	chans hub.ConnChannels // its channels, as the hub keeps them
}

// HubChannels is the connection's channels as the hub keeps them.
func (c *Conn) HubChannels() *hub.ConnChannels { return &c.chans }

// ID is the socket id, in Pusher's form.
func (c *Conn) ID() string { return c.id }

// UserID is the user the connection signed in as, empty while anonymous.
func (c *Conn) UserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// SendFrame sends a hub delivery's Pusher form; a frame without one (an event of the
// socket.io protocol only) is skipped. It never waits for the network and returns false
// when the connection is closed or was just closed as a slow consumer.
func (c *Conn) SendFrame(f wire.Frame) bool {
	b := f.Alt()
	if b == nil {
		return true
	}
	return c.send(b)
}

// Close closes the connection with the close code its reason calls for.
func (c *Conn) Close(reason string) {
	switch reason {
	case hub.ReasonTerminated:
		c.closeWith(CloseUnauthorized, reason, nil)
	default:
		c.closeWith(CloseShuttingDown, reason, nil)
	}
}

// send queues one message.
func (c *Conn) send(msg []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) >= c.svc.sendQueue {
		queued := len(c.queue)
		c.mu.Unlock()
		c.svc.log.Warn("slow consumer disconnected", "socket_id", c.id, "protocol", "pusher", "queued", queued)
		c.svc.metrics.SlowConsumers.Inc()
		c.abort(ReasonSlowConsumer)
		return false
	}
	c.queue = append(c.queue, msg)
	c.startWriter()
	c.mu.Unlock()
	// jetsocket_messages_out_total counts hub deliveries, to either protocol, where
	// they fan out (the Delivered hook); not here too.
	return true
}

// sendError sends pusher:error {code, message}, at most a few per second.
func (c *Conn) sendError(code int, message string) {
	if c.errNotice.Allow() {
		c.send(errorMessage(code, message))
	}
}

// startWriter starts the writer unless it runs. Under mu.
func (c *Conn) startWriter() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// closeWith closes the connection with code after sending msg (if any) and what is
// queued: the client's close event carries code and reason. Later calls do nothing.
func (c *Conn) closeWith(code int, reason string, msg []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.code, c.reason = true, code, reason
	if msg != nil {
		c.queue = append(c.queue, msg)
	}
	c.stopTimers()
	c.startWriter()
	c.mu.Unlock()
	c.cancel()
	c.watcher.Shut() // the reader waits for the client's close frame until closeWait
}

// abort drops the connection at once, without a close frame (a slow consumer, whose
// socket would not take one either).
func (c *Conn) abort(reason string) {
	c.mu.Lock()
	if !c.closing {
		c.closing, c.reason = true, reason
		c.stopTimers()
	}
	c.queue = nil
	c.mu.Unlock()
	c.cancel()
	c.drop()
}

// drop closes the socket at once, out of the poller's set first (engine.Watcher.Shut).
func (c *Conn) drop() {
	c.watcher.Shut()
	_ = c.ws.UnderlyingConn().Close()
}

func (c *Conn) stopTimers() {
	if c.activity != nil {
		c.activity.Stop()
	}
	if c.signin != nil {
		c.signin.Stop()
	}
}

func (c *Conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// writeLoop writes the queue until it is empty, then ends; on a closing connection it
// then writes the close frame and gives the reader closeWait to see the client's.
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue = nil
		if len(batch) == 0 {
			c.writing = false
			closing, code, reason := c.closing, c.code, c.reason
			c.mu.Unlock()
			if closing && code != 0 {
				c.writeClose(code, reason)
			}
			return
		}
		c.mu.Unlock()
		for _, msg := range batch {
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				c.abort(ReasonClientGone)
				c.mu.Lock()
				c.writing = false
				c.mu.Unlock()
				return
			}
		}
	}
}

func (c *Conn) writeClose(code int, reason string) {
	if len(reason) > 120 { // a close frame's payload is at most 125 bytes
		reason = reason[:120]
	}
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		c.drop()
		return
	}
	// The reader ends when the client answers the close, or at this deadline.
	_ = c.ws.SetReadDeadline(time.Now().Add(closeWait))
}

// touch records activity from the client.
func (c *Conn) touch() { c.seen.Store(time.Now().UnixNano()) }

// checkActivity runs when the connection may have been quiet for the activity timeout:
// a quiet one is pinged, and one that stays quiet for the pong timeout after the ping is
// closed with 4201. Any message counts as activity, as in pusher-js.
func (c *Conn) checkActivity() {
	cfg := c.svc.cfg.Pusher
	idle := time.Since(time.Unix(0, c.seen.Load()))
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	switch {
	case idle < cfg.ActivityTimeout:
		c.pinged = false
		c.activity.Reset(cfg.ActivityTimeout - idle)
		c.mu.Unlock()
	case !c.pinged:
		c.pinged = true
		c.activity.Reset(cfg.PongTimeout)
		c.mu.Unlock()
		c.send(encode(EventPing, "", struct{}{}))
	default:
		c.mu.Unlock()
		c.closeWith(ClosePongTimeout, "pong reply not received", errorMessage(ClosePongTimeout, "pong reply not received"))
	}
}
