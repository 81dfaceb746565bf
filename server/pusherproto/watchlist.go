package pusherproto

import (
	"context"

	"github.com/jetsocket/jetsocket/server/hub"
)

// EventWatchlist carries watchlist changes: {events: [{name: "online"|"offline", user_ids}]}.
const EventWatchlist = "pusher_internal:watchlist_events"

// watchlistMessage is pusher_internal:watchlist_events with events (no channel: pusher-js
// reads it off the connection).
func watchlistMessage(events []hub.WatchEvent) []byte {
	return encode(EventWatchlist, "", map[string]any{"events": events})
}

// encodeOnline is a member change of a user's online channel in watchlist form.
func encodeOnline(m hub.Message) []byte {
	events, ok := hub.OnlineChange(m)
	if !ok {
		return nil
	}
	return watchlistMessage(events)
}

// watch follows the online state of the users in a sign-in's watchlist (hub.Watch) and
// sends c the state they are in now.
func (s *Service) watch(ctx context.Context, c *Conn, ids []string) {
	events, err := s.hub.Watch(ctx, c, ids)
	if err != nil {
		s.log.Error("watchlist", "socket_id", c.id, "err", err)
	}
	if len(events) > 0 {
		c.send(watchlistMessage(events))
	}
}
