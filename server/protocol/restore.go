package protocol

import (
	"encoding/json"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/socket"
)

// tracker is a connection that keeps a delivery log for socket.io 4.x connection state
// recovery (socket.Conn): it is told its subscriptions, and a restore makes them again.
type tracker interface {
	Track(channel string, req json.RawMessage, positioned bool, epoch string, offset uint64)
	Untrack(channel string)
}

var _ tracker = (*socket.Conn)(nil)

// track tells c's delivery log, if it keeps one, of a subscription and of the position
// its client has on the channel: since when the missed publications follow (the replay
// is logged as it is sent), else the channel's position at the subscribe.
func track(c Conn, req subscribeReq, rec *hub.Recovery) {
	t, ok := c.(tracker)
	if !ok || rec == nil {
		return
	}
	pos, positioned := rec.Position, rec.History
	if rec.Asked && rec.Recovered {
		pos = *req.Since
	}
	req.Since = nil
	raw, err := json.Marshal(req)
	if err != nil {
		return
	}
	t.Track(req.Channel, raw, positioned, pos.Epoch, pos.Offset)
}

// Restore subscribes a restored socket.io 4.x session (socket.Options.OnRestore) to its
// channels again, each from the position its client has, with the same request as
// before: the channel rules, signatures and hooks are checked again with the claims of
// the token it came back with. ok is false when a channel refuses it or cannot be
// recovered whole (no history, trimmed, expired, another epoch): the caller then drops
// the connection, which leaves them all. finish sends every channel's missed
// publications, in order, after the CONNECT reply.
func (s *Service) Restore(c Conn, chans []socket.Restored) (finish func(), ok bool) {
	st := c.ConnState()
	if !st.Enter() {
		s.log.Info("restore: the connection has ended", "socket_id", c.ID())
		return nil, false
	}
	defer st.Exit()
	recs := make([]*hub.Recovery, 0, len(chans))
	for _, ch := range chans {
		var req subscribeReq
		if err := json.Unmarshal(ch.Request, &req); err != nil || !ch.Positioned {
			s.log.Info("restore: channel not recoverable", "socket_id", c.ID(), "channel", ch.Channel, "positioned", ch.Positioned)
			return nil, false
		}
		req.Since = &history.Position{Epoch: ch.Epoch, Offset: ch.Offset}
		_, _, rec, err := s.subscribeLimited(c.Context(), c, req, false)
		if err != nil {
			s.log.Info("restore: subscribe refused", "socket_id", c.ID(), "channel", ch.Channel, "err", err)
			return nil, false
		}
		s.metrics.Recoveries.WithLabelValues(boolLabel(rec.Recovered)).Inc()
		if !rec.Recovered {
			// Not finished: what it holds back must not reach the client, whose
			// connection is dropped next (leaving the channel ends the holding back).
			s.log.Info("restore: history does not cover the gap", "socket_id", c.ID(), "channel", ch.Channel)
			return nil, false
		}
		track(c, req, rec)
		recs = append(recs, rec)
	}
	return func() {
		for _, rec := range recs {
			rec.Finish()
		}
	}, true
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
