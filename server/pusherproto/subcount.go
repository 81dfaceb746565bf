package pusherproto

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// countWindow coalesces a channel's count changes: a burst of subscribes (a page load
// across many clients) becomes one subscription_count, sent this long after the first.
const countWindow = 100 * time.Millisecond

// counts sends subscription_count (SUBSCRIPTION_COUNT) to the subscribers of a channel
// whose count changed, and the subscription_count webhook, coalesced per channel. Presence channels have their member
// events instead, as in Pusher.
type counts struct {
	mu      sync.Mutex
	pending map[string]bool
}

// CountChanged is the hub's Counted hook: it schedules a channel's subscription_count.
// It does nothing unless SUBSCRIPTION_COUNT is set.
func (s *Service) CountChanged(channel string, _ int) {
	if !s.cfg.SubscriptionCount || strings.HasPrefix(channel, channels.PrefixPresence) {
		return
	}
	c := &s.counts
	c.mu.Lock()
	if c.pending[channel] {
		c.mu.Unlock()
		return
	}
	if c.pending == nil {
		c.pending = make(map[string]bool)
	}
	c.pending[channel] = true
	c.mu.Unlock()
	time.AfterFunc(countWindow, func() { s.sendCount(channel) })
}

// sendCount publishes the channel's count as it is now, on every node.
func (s *Service) sendCount(channel string) {
	c := &s.counts
	c.mu.Lock()
	delete(c.pending, channel)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	total, err := s.hub.Subscribers(ctx, channel)
	if err != nil {
		s.log.Error("subscription count", "channel", channel, "err", err)
		return
	}
	// The webhook tells the app every settled count, 0 included (as Pusher's does).
	s.webhooks(webhook.Event{Name: webhook.SubscriptionCount, Channel: channel, SubscriptionCount: &total})
	if total == 0 {
		return // nobody to tell
	}
	data, _ := json.Marshal(map[string]int{"subscription_count": total})
	// Payload is the socket.io form, set so that the count is a notice, not a
	// publication: history does not keep it (a cache channel's last event stays the
	// app's) and it has no position. Data is what the Pusher form is built from.
	payload, _ := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}{channel, data})
	if err := s.hub.Publish(ctx, hub.Message{Channel: channel, Event: hub.EventSubscriptionCount, Data: data, Payload: payload}); err != nil {
		s.log.Error("publish subscription count", "channel", channel, "err", err)
	}
}
