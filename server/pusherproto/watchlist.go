package pusherproto

import (
	"context"
	"encoding/json"

	"github.com/jetsocket/jetsocket/server/hub"
)

// EventWatchlist carries watchlist changes: {events: [{name: "online"|"offline", user_ids}]}.
const EventWatchlist = "pusher_internal:watchlist_events"

// maxWatchlist bounds a sign-in's watchlist, as Pusher does.
const maxWatchlist = 100

type watchEvent struct {
	Name    string   `json:"name"`
	UserIDs []string `json:"user_ids"`
}

// watchlistMessage is pusher_internal:watchlist_events with events (no channel: pusher-js
// reads it off the connection).
func watchlistMessage(events []watchEvent) []byte {
	return encode(EventWatchlist, "", map[string]any{"events": events})
}

// encodeOnline is a member change of a user's online channel in watchlist form.
func encodeOnline(m hub.Message) []byte {
	var p struct {
		UserID string `json:"user_id"`
	}
	if json.Unmarshal(m.Payload, &p) != nil || p.UserID == "" {
		return nil
	}
	name := "online"
	if m.Event == hub.EventMemberRemoved {
		name = "offline"
	}
	return watchlistMessage([]watchEvent{{name, []string{p.UserID}}})
}

// watch follows the online state of the users in a sign-in's watchlist: c subscribes to
// each one's online channel (its member changes come as watchlist events), then gets
// the state they are in now.
func (s *Service) watch(ctx context.Context, c *Conn, ids []string) {
	if len(ids) > maxWatchlist {
		ids = ids[:maxWatchlist]
	}
	var online, offline []string
	for _, id := range ids {
		if id == "" {
			continue
		}
		ch := hub.OnlineChannel(id)
		if _, err := s.hub.Subscribe(ctx, c, ch, nil, 0); err != nil {
			s.log.Error("watchlist subscribe", "socket_id", c.id, "err", err)
			continue
		}
		members, err := s.hub.Members(ctx, ch)
		if err != nil {
			s.log.Error("watchlist state", "socket_id", c.id, "err", err)
			continue
		}
		if len(members) > 0 {
			online = append(online, id)
		} else {
			offline = append(offline, id)
		}
	}
	var events []watchEvent
	if len(online) > 0 {
		events = append(events, watchEvent{"online", online})
	}
	if len(offline) > 0 {
		events = append(events, watchEvent{"offline", offline})
	}
	if len(events) > 0 {
		c.send(watchlistMessage(events))
	}
}
