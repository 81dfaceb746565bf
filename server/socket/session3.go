package socket

import (
	"io"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/engineio/session"

	"github.com/jetsocket/jetsocket/server/socket/engine"
)

// session3 is a go-socket.io (Engine.IO v3) session as a Session.
type session3 struct {
	s    engineio.Conn
	info *openInfo
}

func newSession3(s engineio.Conn, info *openInfo) *session3 {
	if info == nil { // filed by its OPEN packet: never missing unless the library changed
		info = &openInfo{}
	}
	return &session3{s: s, info: info}
}

func (c *session3) ID() string { return c.s.ID() }

func (c *session3) NextReader() (bool, io.ReadCloser, error) {
	ft, r, err := c.s.NextReader()
	return ft == session.BINARY, r, err
}

func (c *session3) Send(text []byte) error {
	w, err := c.s.NextWriter(session.TEXT)
	if err != nil {
		return err
	}
	if _, err := w.Write(text); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// WebSocket: the library does not expose a session's transport; the address of the
// current one leads to it (wsAddr).
func (c *session3) WebSocket() *engine.WebSocket { return websocketOf(c.s.RemoteAddr()) }
func (c *session3) Close() error                 { return c.s.Close() }
func (c *session3) Transport() string            { return c.info.transport }
func (c *session3) ClientIP() string             { return c.info.ip }
func (c *session3) Token() string                { return c.info.token }
func (c *session3) Protocol() int                { return 4 }

// CutOff: the v3 engine never closes a session for its client's slowness; the socket
// layer's send queue does.
func (c *session3) CutOff() bool { return false }
