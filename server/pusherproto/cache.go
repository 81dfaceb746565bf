package pusherproto

import (
	"context"
	"errors"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// EventCacheMiss tells a cache channel's new subscriber that there is no last event.
const EventCacheMiss = "pusher:cache_miss"

// sendCached gives a cache channel's new subscriber the channel's last event, read from
// the channel's history (the same on every node), or pusher:cache_miss (and a
// cache_miss webhook) when there is none (no publication yet, expired, or history off
// for the channel).
func (s *Service) sendCached(ctx context.Context, c *Conn, channel string) {
	if msg := s.lastEvent(ctx, channel); msg != nil {
		c.send(msg)
		return
	}
	// The webhook is queued first: a client that has the event can count on it.
	s.webhooks(webhook.Event{Name: webhook.CacheMiss, Channel: channel})
	c.send(encodeRaw(EventCacheMiss, channel, []byte("{}"), ""))
}

func (s *Service) lastEvent(ctx context.Context, channel string) []byte {
	p, ok, err := history.Last(ctx, s.hub, channel)
	if err != nil && !errors.Is(err, hub.ErrNoHistory) {
		s.log.Warn("cache channel: last event unreadable", "channel", channel, "err", err)
	}
	if !ok {
		return nil
	}
	return EncodeMessage(hub.Message{Channel: channel, Event: p.Event, Data: p.Data, UserID: p.UserID})
}
