package eio3

import (
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/jetsocket/jetsocket/server/errs"
)

// go-socket.io treats any request whose transport differs from its session's as an
// upgrade, and runs every such upgrade at once, each on a goroutine of its own that
// waits up to PingTimeout for the client's probe:
//
//   - a polling request for a session on a websocket (no client asks to "upgrade" to
//     polling) parks the request and a goroutine for 60 s, per request;
//   - two websockets on one polling sid both get their probe answered and both pause
//     the polling conn; the second to finish orphans the first (never read, never closed
//     by the server).
//
// Both are refused with 400 before the library sees them.
//
// And the library's upgrade goroutine outlives the session: a probe websocket whose
// session ends (or that is swapped into a session that just ended) is never closed by
// the library. So each upgrade's websocket is kept here by sid, closed when the session's
// connection ends (abort), and counted against MAX_CONNECTIONS_PER_IP until the client's
// upgrade packet makes it the session's transport.

// upgrades is the set of session ids with a websocket upgrade in progress, and their
// websockets.
type upgrades struct {
	ips IPCounter // nil: not counted
	mu  sync.Mutex
	sid map[string]*handoffConn // nil while the websocket handshake runs
}

func newUpgrades(ips IPCounter) *upgrades {
	return &upgrades{ips: ips, sid: make(map[string]*handoffConn)}
}

// begin reports whether sid had no upgrade in progress, and marks it.
func (u *upgrades) begin(sid string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, busy := u.sid[sid]; busy {
		return false
	}
	u.sid[sid] = nil
	return true
}

// started records sid's upgrade websocket.
func (u *upgrades) started(sid string, c *handoffConn) {
	u.mu.Lock()
	u.sid[sid] = c
	u.mu.Unlock()
}

// end unmarks sid: its upgrade websocket closed (failed, or the session ended).
func (u *upgrades) end(sid string) {
	u.mu.Lock()
	delete(u.sid, sid)
	u.mu.Unlock()
}

// abort closes sid's upgrade websocket, if any: its session has ended.
func (u *upgrades) abort(sid string) {
	u.mu.Lock()
	c := u.sid[sid]
	delete(u.sid, sid)
	u.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// count is the number of sessions with an upgrade websocket (tests).
func (u *upgrades) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.sid)
}

// errRefused tells the library that the request has been answered: it writes nothing
// more for a websocket handshake error.
var errRefused = websocket.HandshakeError{}

// refuse answers a transport request with 400 {error, message} and returns errRefused
// for Accept to return.
func refuse(w http.ResponseWriter, code, message string) error {
	errs.Write(w, errs.New(errs.Invalid, code, message))
	return errRefused
}
