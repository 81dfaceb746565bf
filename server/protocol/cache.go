package protocol

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// cacheReadTimeout bounds the history read of a cache channel's subscribe.
const cacheReadTimeout = 5 * time.Second

// cacheEvent is a cache channel's last event as the socket.io side sends it: the
// shape of a live delivery, without its position (the ack carries that).
type cacheEvent struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id,omitempty"`
}

// sendCached gives a cache channel's new subscriber the channel's last event (from its
// history, as the Pusher endpoint does), or jetsocket:cache_miss {channel} and a
// cache_miss webhook when there is none.
func (s *Service) sendCached(c Conn, channel string) {
	ctx, cancel := withTimeout(c.Context(), cacheReadTimeout)
	defer cancel()
	p, ok, err := history.Last(ctx, s.hub, channel)
	if err != nil && !errors.Is(err, hub.ErrNoHistory) {
		s.log.Warn("cache channel: last event unreadable", "channel", channel, "err", err)
	}
	if ok {
		data := p.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		c.Emit(p.Event, cacheEvent{channel, data, p.UserID})
		return
	}
	// The webhook is queued first: a client that has the event can count on it.
	s.webhooks(webhook.Event{Name: webhook.CacheMiss, Channel: channel})
	c.Emit(EventCacheMiss, struct {
		Channel string `json:"channel"`
	}{channel})
}
