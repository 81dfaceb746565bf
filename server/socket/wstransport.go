package socket

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/gorilla/websocket"
)

// wsTransport is Engine.IO's websocket transport, in place of go-socket.io's own: the
// library's frame codec (engineio/packet) over gorilla/websocket, without what its
// websocket transport costs per connection and per frame:
//
//   - its conns implement http.Handler and park the net/http serving goroutine in
//     ServeHTTP until the conn closes (a goroutine and its stack per connection, idle);
//     ours do not, so that goroutine ends once the connection is hijacked;
//   - it starts a goroutine and a 30-second timer for every frame read or written, only
//     to print a reminder when a reader is not closed (every delivery paid for it);
//   - it keeps the upgrade request's headers for the life of the connection, and gorilla
//     keeps a 4 KiB read buffer and a 4 KiB write buffer per connection. Ours keeps the
//     URL only, reads through a small buffer and borrows write buffers from a pool for
//     the length of one frame.
//
// Measured with bench/ (BENCHMARKS.md) on idle connections and on fan-out.
type wsTransport struct {
	checkOrigin func(*http.Request) bool
}

// wsReadBuffer is the read buffer per connection. Client packets are small (an event and
// its ack id); a larger frame is read through it in more than one syscall.
const wsReadBuffer = 1024

// wsWriteBuffers are shared by every connection: a buffer is held only while one frame
// is written.
var wsWriteBuffers = &sync.Pool{}

func (t *wsTransport) Name() string { return "websocket" }

func (t *wsTransport) Accept(w http.ResponseWriter, r *http.Request) (transport.Conn, error) {
	c, err := acceptWebsocket(w, r, t.checkOrigin)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// acceptWebsocket upgrades r to a websocket conn; both engines' websockets are these, so
// the socket layer writes prebuilt frames to either directly.
func acceptWebsocket(w http.ResponseWriter, r *http.Request, checkOrigin func(*http.Request) bool) (*wsConn, error) {
	up := websocket.Upgrader{
		ReadBufferSize:  wsReadBuffer,
		WriteBufferSize: 4096,
		WriteBufferPool: wsWriteBuffers,
		CheckOrigin:     checkOrigin,
	}
	ws, err := up.Upgrade(w, r, w.Header())
	if err != nil {
		return nil, err
	}
	c := &wsConn{ws: ws, url: *r.URL}
	c.dec = packet.NewDecoder(wsFrames{c})
	c.enc = packet.NewEncoder(wsFrames{c})
	// A plain TCP conn is written directly (see writeNow); TLS conns go through gorilla.
	if tc, ok := ws.UnderlyingConn().(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			c.tcp, c.raw = tc, raw
		}
	}
	// Control frames gorilla answers by itself (pong, close) must not land inside a
	// frame written directly, so they take wmu too. They are only tried: the reader
	// goroutine that runs these may itself hold wmu (the session's ping echo), and a
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

// Dial is not used: the server only accepts.
func (t *wsTransport) Dial(*url.URL, http.Header) (transport.Conn, error) {
	return nil, errors.New("socket: websocket transport does not dial")
}

// wsConn is one websocket connection. Reads come from one goroutine at a time (the
// session's read loop); writes from several (the connection's writer, the hub's fan-out
// and the session's pong), so a writer holds wmu from NextWriter until it closes the
// frame, and a direct write (writeNow, writeFrames) holds it until every byte is out.
type wsConn struct {
	ws  *websocket.Conn
	url url.URL
	dec *packet.Decoder
	enc *packet.Encoder
	tcp *net.TCPConn    // nil on TLS: no direct writes
	raw syscall.RawConn // tcp's, for writes that must not wait

	wmu sync.Mutex
	cur io.WriteCloser // the frame being written, under wmu
	wdl time.Time      // the session's write deadline, under wmu
	// wdlFor, when set, replaces wdl by now+wdlFor at each write: the v4 engine sets no
	// deadline of its own.
	wdlFor time.Duration

	linger atomic.Bool // see lingerOnClose
	closed atomic.Bool // a lingering close has begun
	shut   atomic.Bool // Close was called: the session is over (see Server.sessionEnded)
}

// direct reports whether frames can be written to the socket as they are.
func (c *wsConn) direct() bool { return c.raw != nil }

// writeNow writes as much of b as the socket takes at once, without waiting for it to
// drain, and returns how much that was: the hub's fan-out calls it for each subscriber
// and must never wait for one. The caller holds wmu, and keeps holding it until the
// rest of b is written (writeFrames), so nothing else lands inside the frame.
func (c *wsConn) writeNow(b []byte) int {
	n := 0
	err := c.raw.Write(func(fd uintptr) bool {
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

// writeFrames writes bufs with one writev, waiting for the socket as long as the
// session's write deadline allows. The caller holds wmu. The deadline is set here each
// time: gorilla sets the socket's own deadline only when it writes, and its control
// frames leave a short one behind.
func (c *wsConn) writeFrames(bufs net.Buffers) error {
	dl := c.wdl
	if c.wdlFor > 0 {
		dl = time.Now().Add(c.wdlFor)
	}
	if err := c.tcp.SetWriteDeadline(dl); err != nil {
		return err
	}
	_, err := bufs.WriteTo(c.tcp)
	return err
}

func (c *wsConn) tryControl(mt int, data []byte) error {
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

func (c *wsConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	return c.dec.NextReader()
}

func (c *wsConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	return c.enc.NextWriter(ft, pt)
}

// A connection closed while its client is still sending (the server refusing a huge
// frame it will not read) would answer the unread bytes with a TCP reset, and a reset
// makes the client's kernel throw away what it had received but not yet read: the error
// frame that said why. Such a conn is closed the way HTTP servers close: half-closed
// first (the client reads everything, then end of stream), fully closed once the client
// closes too, or after lingerTime or lingerBytes, whichever is first. Only on request
// (lingerOnClose): the socket layer's read loop must have stopped reading, or it would
// wait out the linger (and hold up a shutdown) before it saw the close.
const (
	lingerTime  = time.Second
	lingerBytes = 4 << 20
)

// lingerOnClose makes the next Close linger; the caller no longer reads from c.
func (c *wsConn) lingerOnClose() { c.linger.Store(true) }

func (c *wsConn) Close() error {
	c.shut.Store(true)
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

func (c *wsConn) URL() url.URL                      { return c.url }
func (c *wsConn) LocalAddr() net.Addr               { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr              { return wsAddr{c.ws.RemoteAddr(), c} }
func (c *wsConn) RemoteHeader() http.Header         { return http.Header{} }
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wdl = t
	return c.ws.SetWriteDeadline(t)
}

// wsAddr is a websocket conn's remote address. It also leads from an Engine.IO session
// to its websocket, which the library does not expose: session.RemoteAddr returns the
// current transport's, so once a session is on the websocket (from the start, or after
// its upgrade has swapped it in) the socket layer finds the conn to write frames to.
// Only this file makes one, so a client cannot forge it.
type wsAddr struct {
	net.Addr
	c *wsConn
}

// websocketOf returns the websocket a session's address leads to, if any.
func websocketOf(a net.Addr) *wsConn {
	if w, ok := a.(wsAddr); ok {
		return w.c
	}
	return nil
}

// wsFrames adapts a wsConn to the frame reader and writer the packet codec wants.
type wsFrames struct{ c *wsConn }

func (f wsFrames) NextReader() (frame.Type, io.ReadCloser, error) {
	mt, r, err := f.c.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	ft, err := frameType(mt)
	if err != nil {
		return 0, nil, err
	}
	// gorilla discards whatever a reader left unread when the next one is asked for.
	return ft, frameReader{r}, nil
}

// frameReader is a received frame. The library's session echoes every Engine.IO ping
// with io.Copy, which allocates a 32 KiB buffer per call unless the source can write
// itself out: at one ping per client every 25 s that was most of the server's garbage
// (10,000 idle clients: 13 MB/s). WriteTo copies through a small pooled buffer instead.
type frameReader struct{ io.Reader }

func (frameReader) Close() error { return nil }

var copyBuffers = sync.Pool{New: func() any { return new([512]byte) }}

func (r frameReader) WriteTo(w io.Writer) (int64, error) {
	buf := copyBuffers.Get().(*[512]byte)
	defer copyBuffers.Put(buf)
	var n int64
	for {
		m, err := r.Read(buf[:])
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (f wsFrames) NextWriter(ft frame.Type) (io.WriteCloser, error) {
	mt := websocket.TextMessage
	switch ft {
	case frame.String:
	case frame.Binary:
		mt = websocket.BinaryMessage
	default:
		return nil, transport.ErrInvalidFrame
	}
	c := f.c
	c.wmu.Lock()
	w, err := c.ws.NextWriter(mt)
	if err != nil {
		c.wmu.Unlock()
		return nil, err
	}
	c.cur = w
	return lockedFrame{c}, nil
}

func frameType(mt int) (frame.Type, error) {
	switch mt {
	case websocket.TextMessage:
		return frame.String, nil
	case websocket.BinaryMessage:
		return frame.Binary, nil
	}
	return 0, transport.ErrInvalidFrame
}

// lockedFrame is the frame being written; Close sends it and lets the next writer in.
type lockedFrame struct{ c *wsConn }

func (f lockedFrame) Write(p []byte) (int, error) { return f.c.cur.Write(p) }

func (f lockedFrame) Close() error {
	err := f.c.cur.Close()
	f.c.cur = nil
	f.c.wmu.Unlock()
	return err
}

// NextMessage is the v4 engine's read (eio4.WebSocket): the next message, unframed.
func (c *wsConn) NextMessage() (binary bool, r io.Reader, err error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return false, nil, err
	}
	return mt == websocket.BinaryMessage, r, nil
}

// WriteText is the v4 engine's write (eio4.WebSocket): one text message, under wmu like
// every other write.
func (c *wsConn) WriteText(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.wdlFor))
	return c.ws.WriteMessage(websocket.TextMessage, p)
}
