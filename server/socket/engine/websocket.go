package engine

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket is one websocket connection of either engine. Reads come from one goroutine
// at a time (the session's read loop); writes from several (the connection's writer, the
// hub's fan-out, the engine's pings and pongs), so every write holds the write lock
// (LockWrites, TryLockWrites) until its whole frame is out: a direct write of a prebuilt
// frame (WriteNow, WriteFrames) and the engines' own messages alike.
//
// It costs little per connection: gorilla borrows write buffers from a shared pool for
// the length of one frame, a connection that waits with WaitReadable holds a read buffer
// only while its client has sent something (Readiness), and no request state (URL,
// headers) is kept.
type WebSocket struct {
	ws  *websocket.Conn
	tcp *net.TCPConn // nil on TLS: no direct writes
	rd  Readiness    // what gorilla has buffered, and waiting for more; its raw conn is tcp's

	wmu sync.Mutex
	cur io.WriteCloser // the message NextWriter is writing, under wmu
	wdl time.Time      // the session's write deadline, under wmu
	// WriteTimeout, when set, replaces the write deadline by now+WriteTimeout at each
	// write: the v4 engine sets no deadline of its own. Set before the first write.
	WriteTimeout time.Duration

	watcher Watcher // a Poller's wait for the client; its shut: Close was called

	linger atomic.Bool // see LingerOnClose
	closed atomic.Bool // a lingering close has begun
}

// wsReadBuffer is the read buffer per connection, held while it is idle where the
// connection is not read through WaitReadable (v3, TLS). Client packets
// are small (a ping, an event and its ack id); a larger frame is read through it in more
// than one syscall. 1 KiB -> 512 B: live heap per idle connection 0.91x (v2) and 0.92x
// (v4) at N=2,000 (BENCHMARKS.md).
const wsReadBuffer = 512

// wsWriteBuffers are shared by every connection: a buffer is held only while one frame
// is written.
var wsWriteBuffers = &sync.Pool{}

// AcceptWebSocket upgrades r to a websocket; on error the request has been answered.
// Both engines' websockets are these, so the socket layer writes prebuilt frames to
// either directly.
func AcceptWebSocket(w http.ResponseWriter, r *http.Request, checkOrigin func(*http.Request) bool) (*WebSocket, error) {
	up := websocket.Upgrader{
		WriteBufferSize: 4096,
		WriteBufferPool: wsWriteBuffers,
		CheckOrigin:     checkOrigin,
	}
	ws, rd, err := Upgrade(&up, w, r, w.Header(), wsReadBuffer)
	if err != nil {
		return nil, err
	}
	c := &WebSocket{ws: ws, rd: rd}
	// A plain TCP conn is written directly (see WriteNow); TLS conns go through gorilla.
	if tc, ok := ws.UnderlyingConn().(*net.TCPConn); ok && rd.raw != nil {
		c.tcp = tc
	}
	// Control frames gorilla answers by itself (pong, close) must not land inside a
	// frame written directly, so they take wmu too. They are only tried: the reader
	// goroutine that runs these may itself hold wmu (the v3 session's ping echo), and a
	// pong skipped while another frame is being written costs the client nothing it
	// relies on (browsers never send websocket pings; Engine.IO pings are data frames).
	ws.SetPingHandler(func(data string) error {
		return c.tryControl(websocket.PongMessage, []byte(data))
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		return c.tryControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""))
	})
	return c, nil
}

// Direct reports whether frames can be written to the socket as they are.
func (c *WebSocket) Direct() bool { return c.tcp != nil }

// LockWrites takes the write lock; TryLockWrites tries to; UnlockWrites releases it.
func (c *WebSocket) LockWrites()         { c.wmu.Lock() }
func (c *WebSocket) TryLockWrites() bool { return c.wmu.TryLock() }
func (c *WebSocket) UnlockWrites()       { c.wmu.Unlock() }

// WriteNow writes as much of b as the socket takes at once, without waiting for it to
// drain, and returns how much that was: the hub's fan-out calls it for each subscriber
// and must never wait for one. The caller holds the write lock, and keeps holding it
// until the rest of b is written (WriteFrames), so nothing else lands inside the frame.
func (c *WebSocket) WriteNow(b []byte) int {
	n := 0
	err := c.rd.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if m <= 0 || err != nil {
				break // EAGAIN (socket buffer full) or a dead peer: the writer finds out
			}
			n += m
		}
		return true // never wait for the poller
	})
	if err != nil {
		return 0
	}
	return n
}

// WriteFrames writes bufs with one writev, waiting for the socket as long as the
// session's write deadline allows. The caller holds the write lock. The deadline is set
// here each time: gorilla sets the socket's own deadline only when it writes, and its
// control frames leave a short one behind.
func (c *WebSocket) WriteFrames(bufs net.Buffers) error {
	dl := c.wdl
	if c.WriteTimeout > 0 {
		dl = time.Now().Add(c.WriteTimeout)
	}
	if err := c.tcp.SetWriteDeadline(dl); err != nil {
		return err
	}
	_, err := bufs.WriteTo(c.tcp)
	return err
}

func (c *WebSocket) tryControl(mt int, data []byte) error {
	if !c.wmu.TryLock() {
		return nil
	}
	defer c.wmu.Unlock()
	err := c.ws.WriteControl(mt, data, time.Now().Add(time.Second))
	if err == websocket.ErrCloseSent {
		return nil
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return err
}

// A connection closed while its client is still sending (the server refusing a huge
// frame it will not read) would answer the unread bytes with a TCP reset, and a reset
// makes the client's kernel throw away what it had received but not yet read: the error
// frame that said why. Such a conn is closed the way HTTP servers close: half-closed
// first (the client reads everything, then end of stream), fully closed once the client
// closes too, or after lingerTime or lingerBytes, whichever is first. Only on request
// (LingerOnClose): the socket layer's read loop must have stopped reading, or it would
// wait out the linger (and hold up a shutdown) before it saw the close.
const (
	lingerTime  = time.Second
	lingerBytes = 4 << 20
)

// LingerOnClose makes the next Close linger; the caller no longer reads from c.
func (c *WebSocket) LingerOnClose() { c.linger.Store(true) }

// Close closes the websocket (see LingerOnClose).
func (c *WebSocket) Close() error {
	c.watcher.Shut() // before the descriptor closes
	if !c.linger.Load() || c.tcp == nil || !c.closed.CompareAndSwap(false, true) {
		return c.ws.Close()
	}
	if c.tcp.CloseWrite() != nil {
		return c.ws.Close()
	}
	go func() {
		_ = c.tcp.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.tcp, lingerBytes)
		_ = c.ws.Close()
	}()
	return nil
}

// Shut reports whether Close was called.
func (c *WebSocket) Shut() bool { return c.watcher.shut.Load() }

func (c *WebSocket) LocalAddr() net.Addr               { return c.ws.LocalAddr() }
func (c *WebSocket) RemoteAddr() net.Addr              { return c.ws.RemoteAddr() }
func (c *WebSocket) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of every later write (the v3 engine's, renewed on
// each client ping).
func (c *WebSocket) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wdl = t
	return c.ws.SetWriteDeadline(t)
}

// Ready reports whether a message can be read without waiting for the network
// (Readiness.Ready). Called between messages.
func (c *WebSocket) Ready() bool { return c.rd.Ready() }

// WaitReadable waits for the client in a few small stack frames (Readiness.Wait).
func (c *WebSocket) WaitReadable() error { return c.rd.Wait() }

// Watch has p wait for the client instead of a goroutine (Watcher.Watch); Rearm has it
// wait again once f has read all there was.
func (c *WebSocket) Watch(p *Poller, f func()) error { return c.watcher.Watch(&c.rd, p, f) }
func (c *WebSocket) Rearm() bool                     { return c.watcher.Rearm(&c.rd) }

// NextMessage returns the next message's reader, unframed; binary reports a binary
// message. gorilla discards whatever a reader left unread when the next one is asked for.
func (c *WebSocket) NextMessage() (binary bool, r io.Reader, err error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return false, nil, err
	}
	return mt == websocket.BinaryMessage, r, nil
}

// WriteText writes one text message, under the write lock like every other write.
func (c *WebSocket) WriteText(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.WriteTimeout > 0 {
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.WriteTimeout))
	}
	return c.ws.WriteMessage(websocket.TextMessage, p)
}

// NextWriter starts a message of type mt (websocket.TextMessage or BinaryMessage) and
// holds the write lock until the returned writer is closed: the v3 engine's frame codec
// writes a message in pieces.
func (c *WebSocket) NextWriter(mt int) (io.WriteCloser, error) {
	c.wmu.Lock()
	w, err := c.ws.NextWriter(mt)
	if err != nil {
		c.wmu.Unlock()
		return nil, err
	}
	c.cur = w
	return lockedWriter{c}, nil
}

// lockedWriter is the message being written (one pointer: no allocation per message);
// Close sends it and lets the next writer in.
type lockedWriter struct{ c *WebSocket }

func (f lockedWriter) Write(p []byte) (int, error) { return f.c.cur.Write(p) }

func (f lockedWriter) Close() error {
	err := f.c.cur.Close()
	f.c.cur = nil
	f.c.wmu.Unlock()
	return err
}
