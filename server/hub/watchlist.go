package hub

import (
	"context"
	"encoding/json"
	"fmt"
)

// EventWatchlist is the socket.io form of watchlist changes, the same as Pusher's
// pusher_internal:watchlist_events: {events: [{name: "online"|"offline", user_ids}]}.
const EventWatchlist = "jetsocket:watchlist_events"

// MaxWatchlist bounds a sign-in's watchlist, as Pusher does.
const MaxWatchlist = 100

// WatchEvent is one entry of a watchlist event: users that came online or went offline.
type WatchEvent struct {
	Name    string   `json:"name"`
	UserIDs []string `json:"user_ids"`
}

// OnlineChange is a member change of a user's online channel in watchlist form; ok is
// false for any other message.
func OnlineChange(m Message) (events []WatchEvent, ok bool) {
	if _, online := OnlineUser(m.Channel); !online || (m.Event != EventMemberAdded && m.Event != EventMemberRemoved) {
		return nil, false
	}
	var p struct {
		UserID string `json:"user_id"`
	}
	if json.Unmarshal(m.Payload, &p) != nil || p.UserID == "" {
		return nil, false
	}
	name := "online"
	if m.Event == EventMemberRemoved {
		name = "offline"
	}
	return []WatchEvent{{name, []string{p.UserID}}}, true
}

// Watch makes c follow the online state of the users ids: c subscribes to each one's
// online channel (its member changes reach c as watchlist events, on either protocol),
// then reads the state they are in now, returned as the first watchlist event (nil when
// ids is empty). Past MaxWatchlist ids are ignored. Subscribing before reading means a
// change in between is seen, at worst twice, never missed.
func (h *Hub) Watch(ctx context.Context, c Conn, ids []string) ([]WatchEvent, error) {
	if len(ids) > MaxWatchlist {
		ids = ids[:MaxWatchlist]
	}
	var online, offline []string
	for _, id := range ids {
		if id == "" {
			continue
		}
		ch := OnlineChannel(id)
		if _, err := h.Subscribe(ctx, c, ch, nil, 0); err != nil {
			return nil, fmt.Errorf("watch %s: %w", id, err)
		}
		members, err := h.Members(ctx, ch)
		if err != nil {
			return nil, fmt.Errorf("watch %s: online state: %w", id, err)
		}
		if len(members) > 0 {
			online = append(online, id)
		} else {
			offline = append(offline, id)
		}
	}
	var events []WatchEvent
	if len(online) > 0 {
		events = append(events, WatchEvent{"online", online})
	}
	if len(offline) > 0 {
		events = append(events, WatchEvent{"offline", offline})
	}
	return events, nil
}

// GoOnline puts c on userID's online channel as a member: the user is online while any
// of its connections (either protocol, any node) is.
func (h *Hub) GoOnline(ctx context.Context, c Conn, userID string) error {
	_, err := h.Subscribe(ctx, c, OnlineChannel(userID), &Member{UserID: userID, Info: json.RawMessage("{}")}, 0)
	return err
}
