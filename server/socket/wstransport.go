package socket

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
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
	up := websocket.Upgrader{
		ReadBufferSize:  wsReadBuffer,
		WriteBufferSize: 4096,
		WriteBufferPool: wsWriteBuffers,
		CheckOrigin:     t.checkOrigin,
	}
	ws, err := up.Upgrade(w, r, w.Header())
	if err != nil {
		return nil, err
	}
	c := &wsConn{ws: ws, url: *r.URL}
	c.dec = packet.NewDecoder(wsFrames{c})
	c.enc = packet.NewEncoder(wsFrames{c})
	return c, nil
}

// Dial is not used: the server only accepts.
func (t *wsTransport) Dial(*url.URL, http.Header) (transport.Conn, error) {
	return nil, errors.New("socket: websocket transport does not dial")
}

// wsConn is one websocket connection. Reads come from one goroutine at a time (the
// session's read loop); writes from several (the connection's writer and the session's
// pong), so a writer holds wmu from NextWriter until it closes the frame.
type wsConn struct {
	ws  *websocket.Conn
	url url.URL
	dec *packet.Decoder
	enc *packet.Encoder

	wmu sync.Mutex
	cur io.WriteCloser // the frame being written, under wmu
}

func (c *wsConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	return c.dec.NextReader()
}

func (c *wsConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	return c.enc.NextWriter(ft, pt)
}

func (c *wsConn) Close() error                      { return c.ws.Close() }
func (c *wsConn) URL() url.URL                      { return c.url }
func (c *wsConn) LocalAddr() net.Addr               { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr              { return c.ws.RemoteAddr() }
func (c *wsConn) RemoteHeader() http.Header         { return http.Header{} }
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.SetWriteDeadline(t)
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
