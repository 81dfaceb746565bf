//go:build ignore

package engine3

import (
	"net/http"

	"github.com/googollee/go-socket.io/engineio/transport"
)

// Copied from Jetsocket's server/socket (scratch only): the EIO3 engine as Jetsocket
// configures go-socket.io, so the baseline differs from the candidates in the engine only.

func Transports(maxFrame int64) []transport.Transport {
	return newTransports(func(*http.Request) bool { return true }, maxFrame, nil)
}

type IDs = sessionIDs

func NewIDs() *IDs { return newSessionIDs() }

func (g *sessionIDs) Accepted(sid string) { g.accepted(sid) }

func (g *sessionIDs) WaitReady(sid string, done <-chan struct{}) { g.waitReady(sid, done) }
