package engine

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"
)

// An idle connection's goroutine keeps every byte of stack it ever grew to: the runtime
// shrinks a stack only when under a quarter of it is in use. A goroutine parked in
// gorilla's read sits 18 frames deep and keeps 4 KiB (8 KiB where it also handled what
// it read). Readiness lets it wait for its client in a few small frames instead, and
// leave reading and handling to Workers: its stack stays at 2 KiB.

// Readiness tells whether a gorilla connection has a message to read, and waits for one
// without reading. The zero value cannot wait (Wait answers ErrNoWait).
//
// While Wait waits, gorilla's reader holds no buffer: its buffer goes back to a shared
// pool and another is lent when the client sends. An idle connection keeps none of the
// bytes it reads through.
type Readiness struct {
	br   *bufio.Reader   // gorilla's reader, handed to it by Upgrade; bufferless while Wait waits
	raw  syscall.RawConn // the TCP connection's; nil on TLS
	conn net.Conn        // what br reads from
	lent *bufio.Reader   // the pooled reader whose buffer br reads through; nil: its own
}

// lentReadBuffer is the size of the read buffers lent while a connection reads: 1 KiB,
// as centrifuge's, since a connection holds one only while it has something to read.
const lentReadBuffer = 1024

// lentReaders hold the buffers that Readiness lends. A pool rather than one buffer per
// connection: only connections whose client has sent hold one.
var lentReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, lentReadBuffer) }}

// ErrNoWait is Wait's answer where it cannot wait (TLS, or not Linux): read as usual.
var ErrNoWait = errors.New("websocket: cannot wait for readability")

// Upgrade is up.Upgrade(w, r, header), with gorilla reading through a bufio.Reader of
// readBuffer bytes (over 256) that the returned Readiness can see into.
// up.ReadBufferSize is ignored: gorilla reads through the hijacked connection's reader
// when it is 0.
func Upgrade(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request, header http.Header, readBuffer int) (*websocket.Conn, Readiness, error) {
	u := *up
	u.ReadBufferSize = 0
	h := &hijacker{ResponseWriter: w, size: readBuffer}
	ws, err := u.Upgrade(h, r, header)
	if err != nil {
		return nil, Readiness{}, err
	}
	rd := Readiness{br: h.br, conn: ws.UnderlyingConn()}
	if tc, ok := ws.UnderlyingConn().(*net.TCPConn); ok {
		rd.raw, _ = tc.SyscallConn()
	}
	return ws, rd, nil
}

// hijacker hands gorilla a read buffer of size bytes that Readiness keeps.
type hijacker struct {
	http.ResponseWriter
	size int
	br   *bufio.Reader
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	conn, brw, err := hj.Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err // gorilla refuses a client that sent before the handshake
	}
	h.br = bufio.NewReaderSize(conn, h.size)
	return conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// Ready reports whether gorilla holds bytes the client sent that no read has taken
// yet: the next message can be read without waiting for the network. Ask it between
// messages: after a message was read, Wait would not see those bytes.
func (rd Readiness) Ready() bool { return rd.br != nil && rd.br.Buffered() > 0 }

// Wait waits until the client has sent something (or gone, or the read deadline
// passed), in a few small stack frames, taking nothing. Call it between messages, from
// the goroutine that reads: while it waits, gorilla's reader has no buffer to read into.
func (rd *Readiness) Wait() error {
	if !canPeek || rd.raw == nil || rd.br == nil {
		return ErrNoWait
	}
	if rd.br.Buffered() > 0 {
		return nil
	}
	rd.giveBack()
	defer rd.borrow()
	// The poller's readiness can be stale (an edge seen while a read was under way), so
	// it is checked before the first wait; a wake-up after the wait is a new edge.
	waited := false
	return rd.raw.Read(func(fd uintptr) bool {
		if waited {
			return true
		}
		waited = true
		return peekReadable(fd)
	})
}

// fd is the connection's descriptor; ErrNoWait where there is none to wait on.
func (rd *Readiness) fd() (int, error) {
	if !canPeek || rd.raw == nil || rd.br == nil {
		return 0, ErrNoWait
	}
	fd := -1
	if err := rd.raw.Control(func(d uintptr) { fd = int(d) }); err != nil || fd < 0 {
		return 0, ErrNoWait
	}
	return fd, nil
}

// giveBack leaves gorilla's reader without a buffer, the lent one back in the pool (the
// one Upgrade made is dropped). Only with nothing buffered.
func (rd *Readiness) giveBack() {
	if rd.lent != nil {
		lentReaders.Put(rd.lent) // its buffer is br's; it is reset when lent again
		rd.lent = nil
	}
	*rd.br = bufio.Reader{}
}

// borrow gives gorilla's reader a pooled buffer, reading from the connection.
func (rd *Readiness) borrow() {
	pr := lentReaders.Get().(*bufio.Reader)
	pr.Reset(rd.conn)
	*rd.br = *pr // br reads through pr's buffer until giveBack
	rd.lent = pr
}
