package socket

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/jetsocket/jetsocket/server/wire"
)

// socket.io 4.x connection state recovery (PRODUCT.md §14), for socket.io-client 4.x
// used directly. With Options.RecoveryWindow set, a v5 connection gets a private
// session id (pid) in its CONNECT reply, and every publication it is sent carries its
// offset string (wire.Pub) as the EVENT's last argument; socket.io-client keeps the last
// one and sends {pid, offset} in the CONNECT auth when it reconnects.
//
// The offset names one publication on one channel, but the client may have missed
// publications on each of its channels. So each such connection keeps a delivery log:
// the (channel, offset) of every publication written to it, in the order written, in a
// bounded ring. A client's connection is ordered (TCP): when it says the last thing it
// got was entry i, it got every entry before i and none after. Its position on each
// channel is then the last entry for that channel up to i, else what it had when it
// subscribed. Exact, and cheap on the fan-out path: an append under the lock sendFrame
// already holds, no allocation once the ring has grown.
//
// A connection that drops unexpectedly (the transport closed, not a DISCONNECT) leaves
// its log behind for RecoveryWindow. It leaves its channels at once, as any disconnect
// does (presence member_removed, webhooks): a user who closed the tab is gone now, not
// RecoveryWindow later. A client that comes back in time, as the same user, with a token
// that still verifies, gets its socket id and pid back, and OnRestore subscribes it
// again to every channel from the position it had (the channel rules checked again),
// the missed publications replayed. If any channel cannot be recovered (history trimmed,
// expired, lost, or a channel keeping none), the restore is refused as socket.io does:
// a fresh session, socket.recovered false, and the app re-subscribes and refetches.

// recoveryLogSize bounds a connection's delivery log: the publications a dropped client
// may have been sent and not received (its send queue and the kernel buffers on both
// sides) must fit in it, or the client cannot be told where it stopped. 1024 entries
// of 8 bytes, grown as they are used.
const recoveryLogSize = 1024

// ReasonRecoveryFailed is the close reason of a restored connection whose channels could
// not all be recovered (its client then gets a fresh session).
const ReasonRecoveryFailed = "recovery failed"

// maxOffsetBits: a log entry is channel index << offsetBits | offset.
const offsetBits = 48

// Restored is one channel of a restored session: the subscribe request it was made
// with (Conn.Track's) and the position of the last publication the client has on it.
type Restored struct {
	Channel string
	Request json.RawMessage
	// Positioned: the channel has a position (it keeps history); Epoch and Offset are it.
	Positioned bool
	Epoch      string
	Offset     uint64
}

// logChannel is one channel of a delivery log.
type logChannel struct {
	name    string
	tracked bool            // subscribed (Track) and not left (Untrack)
	req     json.RawMessage // the subscribe request to make again on a restore
	epoch   string
	base    uint64 // the client has every publication up to base (from Track, or evicted entries)
	// broken: the channel's epoch changed while entries of the old one were logged, so
	// an entry's offset may belong to either; such a channel is not recoverable.
	broken bool
}

// deliveryLog is what a connection was sent, for a restore. Guarded by Conn.mu.
type deliveryLog struct {
	chans   []logChannel
	ring    []uint64 // oldest at next once full
	next    int
	evicted bool
}

func (l *deliveryLog) channel(name string) int {
	for i := range l.chans {
		if l.chans[i].name == name {
			return i
		}
	}
	l.chans = append(l.chans, logChannel{name: name})
	return len(l.chans) - 1
}

// record logs a publication written to the connection.
func (l *deliveryLog) record(p *wire.Pub) {
	i := l.channel(p.Channel)
	ch := &l.chans[i]
	if ch.epoch != p.Epoch {
		if ch.epoch != "" {
			ch.broken = true
		}
		ch.epoch = p.Epoch
	}
	e := uint64(i)<<offsetBits | p.Offset&(1<<offsetBits-1)
	if len(l.ring) < recoveryLogSize {
		l.ring = append(l.ring, e)
		return
	}
	old := l.ring[l.next]
	l.ring[l.next] = e
	l.next = (l.next + 1) % recoveryLogSize
	l.evicted = true
	// The client has the evicted entry if it has any entry still logged.
	oc := &l.chans[old>>offsetBits]
	oc.base = max(oc.base, old&(1<<offsetBits-1))
}

// track records that the connection is subscribed to channel with req and that the
// client has every publication up to (epoch, offset) on it.
func (l *deliveryLog) track(channel string, req json.RawMessage, positioned bool, epoch string, offset uint64) {
	ch := &l.chans[l.channel(channel)]
	ch.tracked, ch.req = true, req
	if !positioned {
		return
	}
	if ch.epoch != epoch {
		if ch.epoch != "" {
			ch.broken = true
		}
		ch.epoch, ch.base = epoch, offset
		return
	}
	ch.base = max(ch.base, offset)
}

func (l *deliveryLog) untrack(channel string) {
	for i := range l.chans {
		if l.chans[i].name == channel {
			l.chans[i].tracked, l.chans[i].req = false, nil
		}
	}
}

// restore returns the client's position on each channel it is subscribed to, given the
// offset string of the last publication it got ("" when it got none since it connected
// or was last restored); ok is false when the log cannot tell (that publication is no
// longer logged, or an unknown one while entries were evicted).
func (l *deliveryLog) restore(offset string) (chans []Restored, ok bool) {
	upTo := -1 // index in the ring (oldest first) of the client's last entry
	ordered := make([]uint64, 0, len(l.ring))
	ordered = append(ordered, l.ring[l.next:]...)
	ordered = append(ordered, l.ring[:l.next]...)
	if ch, epoch, off, valid := wire.ParseOffset(offset); valid {
		for i := len(ordered) - 1; i >= 0; i-- {
			e := ordered[i]
			c := l.chans[e>>offsetBits]
			if c.name == ch && c.epoch == epoch && e&(1<<offsetBits-1) == off {
				upTo = i
				break
			}
		}
	}
	if upTo < 0 && l.evicted {
		return nil, false
	}
	// upTo < 0 without evictions: the client got none of what is logged (an offset from
	// before this connection, or none at all).
	last := make([]uint64, len(l.chans))
	for i := range l.chans {
		last[i] = l.chans[i].base
	}
	for _, e := range ordered[:upTo+1] {
		i := e >> offsetBits
		last[i] = max(last[i], e&(1<<offsetBits-1))
	}
	for i, c := range l.chans {
		if !c.tracked {
			continue
		}
		if c.broken {
			return nil, false
		}
		chans = append(chans, Restored{Channel: c.name, Request: c.req, Positioned: c.epoch != "", Epoch: c.epoch, Offset: last[i]})
	}
	return chans, true
}

// Track tells the connection's delivery log (kept for socket.io 4.x connection state
// recovery) that it is subscribed to channel with req, and that the client has every
// publication up to (epoch, offset) on it (positioned: the channel keeps history). A
// restore subscribes it again with req. A no-op on connections that cannot recover.
func (c *Conn) Track(channel string, req json.RawMessage, positioned bool, epoch string, offset uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rlog != nil {
		c.rlog.track(channel, req, positioned, epoch, offset)
	}
}

// Untrack tells the delivery log that the connection left channel.
func (c *Conn) Untrack(channel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rlog != nil {
		c.rlog.untrack(channel)
	}
}

// Recovered reports whether the connection is a restored session (socket.recovered).
func (c *Conn) Recovered() bool { return c.recovered }

// retained is a dropped connection's session, kept for RecoveryWindow.
type retained struct {
	id, pid, userID string
	log             *deliveryLog
	timer           *time.Timer
}

// newPID returns a private session id: only the client it was sent to knows it.
func newPID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// takeLog detaches c's delivery log, so that leaving its channels does not touch it.
func (c *Conn) takeLog() *deliveryLog {
	c.mu.Lock()
	defer c.mu.Unlock()
	log := c.rlog
	c.rlog = nil
	return log
}

// retain keeps c's session (its delivery log) for RecoveryWindow when it dropped
// unexpectedly.
func (s *Server) retain(c *Conn, reason string, log *deliveryLog) {
	if log == nil || c.pid == "" || reason != ReasonClientGone || s.opts.RecoveryWindow <= 0 {
		return
	}
	r := &retained{id: c.id, pid: c.pid, userID: c.UserID(), log: log}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.retained[r.pid] = r
	r.timer = time.AfterFunc(s.opts.RecoveryWindow, func() {
		s.mu.Lock()
		if s.retained[r.pid] == r {
			delete(s.retained, r.pid)
		}
		s.mu.Unlock()
	})
}

// takeRetained removes and returns userID's session retained under pid, if any
// (another user's stays for its own client).
func (s *Server) takeRetained(pid, userID string) *retained {
	if pid == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.retained[pid]
	if r != nil && r.userID != userID {
		return nil
	}
	if r != nil {
		delete(s.retained, pid)
		r.timer.Stop()
	}
	return r
}

// restorable makes c a connection that can be restored under pid: it logs what it is
// sent, and a CONNECT with its pid finds it while it lives (takeOver).
func (s *Server) restorable(c *Conn, pid string) {
	c.mu.Lock()
	c.pid, c.rlog, c.ended = pid, &deliveryLog{}, make(chan struct{})
	c.mu.Unlock()
	s.mu.Lock()
	s.pids[pid] = c
	s.mu.Unlock()
}

// takeOverWait bounds how long a CONNECT waits for the connection it replaces to be
// gone (its handlers finish, its channels are left).
const takeOverWait = 5 * time.Second

// takeOver handles a CONNECT for a session whose connection the server still thinks
// alive: the client saw its transport die first (a Wi-Fi switch: the old TCP connection
// hangs, unanswered, until the ping timeout). As the same user, the client is the one
// that connection was for, so it is closed now as a dropped transport, retained, and
// handed over.
func (s *Server) takeOver(pid, userID string) *retained {
	if pid == "" {
		return nil
	}
	s.mu.RLock()
	old := s.pids[pid]
	s.mu.RUnlock()
	if old == nil || old.UserID() != userID {
		return nil
	}
	s.log.Info("socket replaced by its client's reconnect", "socket_id", old.id, "user_id", userID)
	old.Close(ReasonClientGone)
	select {
	case <-old.ended:
	case <-time.After(takeOverWait):
		return nil
	}
	return s.takeRetained(pid, userID)
}

// Retained is how many dropped sessions are waiting for their clients.
func (s *Server) Retained() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.retained)
}
