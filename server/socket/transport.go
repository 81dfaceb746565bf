package socket

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/payload"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/googollee/go-socket.io/engineio/transport/polling"
	"github.com/googollee/go-socket.io/engineio/transport/websocket"
)

// upgradeGrace is how long a polling conn that was paused for an upgrade stays open
// after the library closes it. go-socket.io v1.7.0 swaps in the websocket and closes the
// paused polling conn at once; the session's read loop may still hold the polling conn,
// read io.EOF from it and close the whole session, so about 1 in 20 default-option
// clients was disconnected right after upgrading. While the polling conn stays paused
// the loop only sees the library's temporary "paused" error and picks up the websocket
// on its next turn. A second is far beyond that turn and costs nothing: the client has
// stopped polling by then.
const upgradeGrace = time.Second

// pausedRetryDelay slows the library's retry loop while a polling conn is paused: it
// retries a temporary error at once, which would spin a core until the upgrade ends.
const pausedRetryDelay = time.Millisecond

type pauser interface {
	Pause()
	Resume()
}

// upgradeSafePolling wraps go-socket.io's polling transport so its conns survive the
// upgrade race described at upgradeGrace.
type upgradeSafePolling struct {
	*polling.Transport
}

func (t upgradeSafePolling) Accept(w http.ResponseWriter, r *http.Request) (transport.Conn, error) {
	c, err := t.Transport.Accept(w, r)
	if err != nil {
		return nil, err
	}
	return &graceConn{Conn: c}, nil
}

// graceConn is a polling conn whose Close, while paused for an upgrade, waits
// upgradeGrace before closing.
type graceConn struct {
	transport.Conn

	mu      sync.Mutex
	paused  bool
	closing bool
}

// Pause and Resume keep the session's upgrade path working: it type-asserts the old
// conn to a pauser and refuses to upgrade otherwise.
func (c *graceConn) Pause() {
	c.Conn.(pauser).Pause()
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
}

func (c *graceConn) Resume() {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
	c.Conn.(pauser).Resume()
}

func (c *graceConn) isPaused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

func (c *graceConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		return c.Conn.Close()
	}
	if !c.closing {
		c.closing = true
		time.AfterFunc(upgradeGrace, func() { _ = c.Conn.Close() })
	}
	return nil
}

func (c *graceConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	ft, pt, r, err := c.Conn.NextReader()
	if err != nil && isTemporary(err) && c.isPaused() {
		time.Sleep(pausedRetryDelay)
	}
	return ft, pt, r, err
}

func (c *graceConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	w, err := c.Conn.NextWriter(ft, pt)
	if err != nil && isTemporary(err) && c.isPaused() {
		time.Sleep(pausedRetryDelay)
	}
	return w, err
}

// ServeHTTP answers the polling requests; the session requires an http.Handler.
func (c *graceConn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.Conn.(http.Handler).ServeHTTP(w, r)
}

func isTemporary(err error) bool {
	te, ok := err.(payload.Error)
	return ok && te.Temporary()
}

// sessionIDs generates Engine.IO session ids. The library's default is a counter, and a
// guessed sid lets anyone read or write another client's polling session; these are
// 128 random bits.
type sessionIDs struct{}

func (sessionIDs) NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newTransports lists websocket last so polling clients are offered the upgrade.
func newTransports(checkOrigin func(*http.Request) bool) []transport.Transport {
	return []transport.Transport{
		upgradeSafePolling{&polling.Transport{
			Client: &http.Client{Timeout: time.Minute},
			// CORS headers are written by our middleware, which knows ALLOWED_ORIGINS;
			// the library must not echo any origin itself.
			CheckOrigin: func(*http.Request) bool { return false },
		}},
		&websocket.Transport{CheckOrigin: checkOrigin},
	}
}
