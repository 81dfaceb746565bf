package eio3

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/query"
	"github.com/jetsocket/jetsocket/server/socket/engine"
)

// wsTransport is Engine.IO's websocket transport, in place of go-socket.io's own: the
// library's frame codec (engineio/packet) over our engine.WebSocket, without what its
// websocket transport costs per connection and per frame:
//
//   - its conns implement http.Handler and park the net/http serving goroutine in
//     ServeHTTP until the conn closes (a goroutine and its stack per connection, idle);
//     ours do not, so that goroutine ends once the connection is hijacked;
//   - it starts a goroutine and a 30-second timer for every frame read or written, only
//     to print a reminder when a reader is not closed (every delivery paid for it);
//   - it keeps the upgrade request's headers for the life of the connection, and gorilla
//     keeps a 4 KiB read buffer and a 4 KiB write buffer per connection. Ours keeps
//     nothing of the request, reads through a small buffer and borrows write buffers
//     from a pool for the length of one frame.
//
// Measured with bench/ (BENCHMARKS.md) on idle connections and on fan-out.
type wsTransport struct {
	checkOrigin func(*http.Request) bool
	// deadline is how long a client may go without pinging: the library's PingTimeout
	// (socket.io's pingInterval + pingTimeout).
	deadline time.Duration
}

func (t *wsTransport) Name() string { return "websocket" }

func (t *wsTransport) Accept(w http.ResponseWriter, r *http.Request) (transport.Conn, error) {
	ws, err := engine.AcceptWebSocket(w, r, t.checkOrigin)
	if err != nil {
		return nil, err
	}
	c := &wsConn{WebSocket: ws}
	c.dec = packet.NewDecoder(wsFrames{ws})
	c.enc = packet.NewEncoder(wsFrames{ws})
	// A session that opens on this websocket (no sid: not an upgrade, whose probe the
	// library reads itself) has its pings answered here, so that reading never waits
	// for a second frame within one call (see ownPings).
	c.deadline = t.deadline
	if query.Get(r.URL.RawQuery, "sid") == "" {
		c.answerPings()
	}
	return c, nil
}

// answerPings has the client's pings answered here from now on (see ownPings): from the
// start for a session that opens on this websocket, and once the client's upgrade
// packet went through for one that upgrades to it (handoffConn).
func (c *wsConn) answerPings() {
	if c.deadline <= 0 || c.ownPings.Load() {
		return
	}
	c.live.Store(time.AfterFunc(c.deadline, c.silent))
	c.ownPings.Store(true)
}

// Dial is not used: the server only accepts.
func (t *wsTransport) Dial(*url.URL, http.Header) (transport.Conn, error) {
	return nil, errors.New("eio3: websocket transport does not dial")
}

// wsConn is a websocket as the library's transport.Conn: Engine.IO packets framed by the
// library's codec.
type wsConn struct {
	*engine.WebSocket
	dec *packet.Decoder
	enc *packet.Encoder

	// ownPings: the client's pings are answered here, not by the library, whose
	// session answers a ping and reads on for the next frame within the same call: a
	// connection read by a worker when the poller sees data (socket.Server.watch) would
	// hold that worker until the client's next frame. NextReader answers the ping and
	// returns a Pinged message, which Session.NextReader hands on as none (a nil
	// reader: a moment between messages). It also does what the
	// library does after a ping (re-arms both deadlines), and live closes the websocket
	// of a client that stopped pinging, which a read deadline cannot do while no read
	// waits.
	ownPings atomic.Bool
	deadline time.Duration
	live     atomic.Pointer[time.Timer]
}

func (c *wsConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	ft, pt, r, err := c.dec.NextReader()
	if err != nil || pt != packet.PING || !c.ownPings.Load() {
		return ft, pt, r, err
	}
	w, err := c.enc.NextWriter(ft, packet.PONG)
	if err == nil {
		_, err = io.Copy(w, r)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	_ = r.Close()
	if err != nil {
		return 0, 0, nil, err
	}
	deadline := time.Now().Add(c.deadline)
	_ = c.SetReadDeadline(deadline)
	_ = c.SetWriteDeadline(deadline)
	c.live.Load().Reset(c.deadline)
	return ft, packet.MESSAGE, Pinged{}, nil
}

// silent closes the websocket of a client that has not pinged within the deadline, as
// the library's read deadline would if a read were waiting.
func (c *wsConn) silent() { _ = c.WebSocket.Close() }

// Close stops the liveness timer too.
func (c *wsConn) Close() error {
	if t := c.live.Load(); t != nil {
		t.Stop()
	}
	return c.WebSocket.Close()
}

// Pinged is the message a session gets in place of a ping its websocket answered
// (wsConn.ownPings): no message, which Session.NextReader returns as a nil reader.
type Pinged struct{}

func (Pinged) Read([]byte) (int, error) { return 0, io.EOF }
func (Pinged) Close() error             { return nil }

func (c *wsConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	return c.enc.NextWriter(ft, pt)
}

// URL is empty: nothing reads it (the session's values come from its handshake, see
// openInfo), and keeping the request's URL cost each connection a copy of its query.
func (c *wsConn) URL() url.URL { return url.URL{} }
func (c *wsConn) RemoteAddr() net.Addr {
	return wsAddr{c.WebSocket.RemoteAddr(), c.WebSocket, c.ownPings.Load()}
}
func (c *wsConn) RemoteHeader() http.Header { return http.Header{} }

// wsAddr is a websocket conn's remote address. It also leads from a go-socket.io session
// to its websocket, which the library does not expose: session.RemoteAddr returns the
// current transport's, so once a session is on the websocket (from the start, or after
// its upgrade has swapped it in) Session.WebSocket finds the conn to write frames to.
// Only this file makes one, so a client cannot forge it.
type wsAddr struct {
	net.Addr
	c        *engine.WebSocket
	ownPings bool // see wsConn.ownPings
}

// websocketOf returns the websocket a session's address leads to, if any.
func websocketOf(a net.Addr) *engine.WebSocket {
	if w, ok := a.(wsAddr); ok {
		return w.c
	}
	return nil
}

// wsFrames adapts a websocket to the frame reader and writer the packet codec wants.
type wsFrames struct{ c *engine.WebSocket }

func (f wsFrames) NextReader() (frame.Type, io.ReadCloser, error) {
	binary, r, err := f.c.NextMessage()
	if err != nil {
		return 0, nil, err
	}
	ft := frame.String
	if binary {
		ft = frame.Binary
	}
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
	switch ft {
	case frame.String:
		return f.c.NextWriter(websocket.TextMessage)
	case frame.Binary:
		return f.c.NextWriter(websocket.BinaryMessage)
	}
	return nil, transport.ErrInvalidFrame
}
