package hub

import (
	"context"
	"errors"
	"sync"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/wire"
)

// ErrNoHistory is History's answer for a channel that keeps none.
var ErrNoHistory = errors.New("this channel keeps no history")

// HistoryLimits is channel's history limits (Size 0: none, and always none when the
// broker keeps no history).
func (h *Hub) HistoryLimits(channel string) history.Limits {
	if h.history == nil || Internal(channel) {
		return history.Limits{}
	}
	return h.history.HistoryLimits(channel)
}

// History reads channel's history (the same on every node): its latest position and the
// publications q selects, oldest first. A channel without history gets ErrNoHistory.
func (h *Hub) History(ctx context.Context, channel string, q history.Query) (history.Result, error) {
	l := h.HistoryLimits(channel)
	if !l.On() {
		return history.Result{}, ErrNoHistory
	}
	return h.history.Read(ctx, channel, q, l)
}

// MaxReplay is the most publications one subscribe replays; a client that missed more
// is told recovered:false (as centrifuge's RecoveryMaxPublicationLimit does). It stays
// under a connection's send queue (256 frames), which a polling client only drains at
// its next poll: a longer replay would close it as a slow consumer, and its reconnect
// would ask for the same replay again.
const MaxReplay = 200

// Recovery is what a subscribe learnt of its channel's history.
type Recovery struct {
	// History: the channel keeps history, and Position is its latest position when the
	// subscription began. False also when the history could not be read (Redis away).
	History  bool
	Position history.Position
	// Asked: the subscribe gave a position (since). Recovered: every publication after
	// it is sent by Finish; Replayed of them whole, and an EventSkip for each one that
	// excluded this connection (it was not delivered to it live either).
	Asked     bool
	Recovered bool
	Replayed  int

	h       *Hub
	channel string
	buf     *replaying // nil: nothing to finish
	pubs    []history.Publication
}

// SubscribeSince is Subscribe for a client that may have missed publications: since,
// when not nil, is the position of the last one it saw. The connection's live
// deliveries on channel are held back from the moment it is subscribed until Finish,
// which the caller calls once it has sent its answer (the ack): Finish sends the
// publications after since when they could all be recovered, then the live ones that
// arrived meanwhile and are newer than the Recovery's Position, and from then on
// deliveries go straight to the connection. So the client gets, after the ack, every
// publication after since (or, not recovered, after Position) once, in order.
//
// Without since nothing is held back and Finish does nothing; the Recovery still
// carries the channel's position. Subscribing again to a channel the connection is on
// with since recovers the same way (a client that saw a gap in the offsets).
func (h *Hub) SubscribeSince(ctx context.Context, c Conn, channel string, member *Member, max int, since *history.Position) ([]Member, *Recovery, error) {
	rec := &Recovery{h: h, channel: channel, Asked: since != nil}
	l := h.HistoryLimits(channel)
	if !l.On() {
		members, err := h.Subscribe(ctx, c, channel, member, max)
		return members, rec, err
	}
	as := c
	if since != nil {
		rec.buf = &replaying{Conn: c, h: h, channel: channel}
		as = rec.buf
	}
	var members []Member
	var err error
	if h.Subscribed(c, channel) {
		if since != nil {
			h.replace(channel, c.ID(), nil, rec.buf)
		}
		if member != nil {
			members, err = h.presence.Members(ctx, channel)
		}
	} else {
		members, err = h.subscribe(ctx, c, as, channel, member, max)
	}
	if err != nil {
		rec.buf = nil
		return nil, nil, err
	}
	// Read after the subscription is in place: a publication the history does not
	// have yet is delivered live (into the buffer), none falls in between.
	if since != nil {
		rec.pubs, rec.Position, rec.Recovered, err = history.Recover(ctx, h.history, channel, *since, l)
		if len(rec.pubs) > MaxReplay {
			rec.pubs, rec.Recovered = nil, false
		}
	} else {
		var res history.Result
		res, err = h.history.Read(ctx, channel, history.Query{Limit: -1}, l)
		rec.Position = res.Position
	}
	if err != nil {
		// The subscription stands; the client is told nothing was recovered and
		// gets the live publications from now on.
		h.log.Warn("history read failed", "channel", channel, "socket_id", c.ID(), "err", err)
		rec.Position, rec.Recovered, rec.pubs = history.Position{}, false, nil
		return members, rec, nil
	}
	rec.History = true
	for _, p := range rec.pubs {
		if !p.ExcludedFor(c.ID()) {
			rec.Replayed++
		}
	}
	return members, rec, nil
}

// Finish sends the recovered publications, then the live ones held back meanwhile, and
// ends the holding back. Call it once, after the subscribe's answer; it is safe on nil
// and does nothing without since.
func (r *Recovery) Finish() {
	if r == nil || r.buf == nil {
		return
	}
	buf := r.buf
	r.buf = nil
	c := buf.Conn
	sent := uint64(0)
	for _, p := range r.pubs {
		var f wire.Frame
		var err error
		if p.ExcludedFor(c.ID()) {
			// Not delivered live either (its sender, an API trigger's socket_id):
			// the client is told to move past it, not sent it.
			f, err = skipFrame(r.channel, r.Position.Epoch, p.Offset)
		} else {
			f, err = r.h.encode(Message{Channel: r.channel, Event: p.Event, Data: p.Data, UserID: p.UserID, Offset: p.Offset, Epoch: r.Position.Epoch})
		}
		if err != nil {
			r.h.log.Error("encode recovered publication", "channel", r.channel, "offset", p.Offset, "err", err)
			continue
		}
		c.SendFrame(f)
		sent = p.Offset
	}
	r.pubs = nil
	buf.flush(max(sent, r.Position.Offset), r.Position.Epoch)
}

// replace makes to the one channel's deliveries for socketID go to, if it is still
// subscribed and (from not nil) still delivered to from.
func (h *Hub) replace(channel, socketID string, from, to Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.channels[channel]
	cur, ok := subs.get(socketID)
	if !ok || (from != nil && cur != from) {
		return
	}
	subs.set(socketID, to)
	h.channels[channel] = subs
}

// maxHeldBack bounds what a connection's recovery holds back: a channel publishing
// faster than the replay can be read closes the connection as a slow consumer would be.
const maxHeldBack = 10_000

// ReasonRecoveryOverflow is the close reason of a connection whose recovery held back
// more than maxHeldBack live publications.
const ReasonRecoveryOverflow = "slow consumer"

// replaying is a connection whose recovery is under way on one channel: the hub's
// deliveries to it are held, with their positions, until Finish.
type replaying struct {
	Conn
	h       *Hub
	channel string

	mu   sync.Mutex
	held []heldFrame
	// done: flushed; deliveries are passed on, except those at or before upTo in epoch
	// (the replay sent them, or they are before the client's position: the history
	// had them before their live delivery reached this node). The hub delivers to the
	// connection itself again from the first publication after upTo on (swapped).
	done    bool
	swapped bool
	upTo    uint64
	epoch   string
}

type heldFrame struct {
	f      wire.Frame
	offset uint64
	epoch  string
}

// SendFrame holds a frame without a position (a member event), in order with the rest.
func (r *replaying) SendFrame(f wire.Frame) bool { return r.send(f, 0, "") }

func (r *replaying) send(f wire.Frame, offset uint64, epoch string) bool {
	r.mu.Lock()
	if r.done {
		defer r.mu.Unlock()
		if r.covered(offset, epoch) {
			return true
		}
		ok := r.Conn.SendFrame(f)
		r.passed(offset)
		return ok
	}
	if len(r.held) >= maxHeldBack {
		r.mu.Unlock()
		r.Conn.Close(ReasonRecoveryOverflow)
		return false
	}
	r.held = append(r.held, heldFrame{f, offset, epoch})
	r.mu.Unlock()
	return true
}

// flush sends what was held except the publications of epoch at or before upTo (sent
// by the replay, or before the position the client was given), and passes deliveries
// on from now on.
func (r *replaying) flush(upTo uint64, epoch string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upTo, r.epoch = upTo, epoch
	newer := uint64(0)
	for _, h := range r.held {
		if !r.covered(h.offset, h.epoch) {
			r.Conn.SendFrame(h.f)
			newer = max(newer, h.offset)
		}
	}
	r.held, r.done = nil, true
	// Only once all of them are sent: a delivery straight to the connection must not
	// overtake them.
	r.passed(newer)
}

// passed notes a publication newer than the replay going to the connection: every
// later one is newer too (a channel's deliveries are in offset order), so the hub can
// deliver to the connection itself again. Under r.mu.
func (r *replaying) passed(offset uint64) {
	if offset == 0 || r.swapped {
		return
	}
	r.swapped = true
	r.h.replace(r.channel, r.Conn.ID(), r, r.Conn)
}

// covered reports whether the publication at offset in epoch was sent by the replay or
// is at or before the position the client was given; upTo and epoch are set by flush.
func (r *replaying) covered(offset uint64, epoch string) bool {
	return offset != 0 && epoch == r.epoch && offset <= r.upTo
}
