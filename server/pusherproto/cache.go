package pusherproto

import (
	"context"
	"strings"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// EventCacheMiss tells a cache channel's new subscriber that there is no last event.
const EventCacheMiss = "pusher:cache_miss"

// cacheChannel reports whether ch is a cache channel: cache-, private-cache-,
// private-encrypted-cache- or presence-cache-.
func cacheChannel(ch channels.Channel) bool { return strings.HasPrefix(ch.Rest, "cache-") }

// sendCached gives a cache channel's new subscriber the channel's last event, read from
// the channel's history (the same on every node), or pusher:cache_miss when there is
// none (no publication yet, expired, or history off for the channel).
func (s *Service) sendCached(ctx context.Context, c *Conn, channel string) {
	if msg := s.lastEvent(ctx, channel); msg != nil {
		c.send(msg)
		return
	}
	c.send(encodeRaw(EventCacheMiss, channel, []byte("{}"), ""))
}

func (s *Service) lastEvent(ctx context.Context, channel string) []byte {
	head, err := s.hub.History(ctx, channel, history.Query{Limit: -1})
	if err != nil || head.Position.Offset == 0 {
		return nil
	}
	res, err := s.hub.History(ctx, channel, history.Query{After: head.Position.Offset - 1, Limit: 1})
	if err != nil || len(res.Publications) == 0 {
		return nil
	}
	p := res.Publications[0]
	return EncodeMessage(hub.Message{Channel: channel, Event: p.Event, Data: p.Data, UserID: p.UserID})
}
