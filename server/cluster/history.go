package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// History in many-node mode: a channel's history is in Redis (history.Redis), and a
// publication on a channel that keeps one is appended, given its position and published
// to every node by one script. Every node, the publishing one included, delivers it
// from the pub/sub channel, so that each sees a channel's publications in offset order
// whichever node published them. Kept in this file, apart from presence and counts.

var _ hub.PositionBroker = (*Broker)(nil)

// HistoryLimits is channel's history limits under Options.History.
func (b *Broker) HistoryLimits(channel string) history.Limits {
	return b.policy.For(channel)
}

// Read reads channel's history from Redis.
func (b *Broker) Read(ctx context.Context, channel string, q history.Query, l history.Limits) (history.Result, error) {
	return b.hist.Read(ctx, channel, q, l)
}

// publishPositioned appends m to its channel's history and publishes it to every node,
// in one script. When Redis does not answer, m is still delivered to this node's
// subscribers, without a position: a position must be the same on every node, and
// only Redis can give one. The clients that get it keep their last position, and a
// later recovery from it still finds every positioned publication after it.
func (b *Broker) publishPositioned(ctx context.Context, m hub.Message, l history.Limits) error {
	_, err := b.addAndPublish(ctx, m, l)
	return err
}

// PublishAt is Publish that returns the position m was given (zero: none), for the
// ack of a client event (hub.PositionBroker).
func (b *Broker) PublishAt(ctx context.Context, m hub.Message) (history.Position, error) {
	if l := b.HistoryLimits(m.Channel); l.On() && m.Positioned() {
		return b.addAndPublish(ctx, m, l)
	}
	return history.Position{}, b.Publish(ctx, m)
}

// addAndPublish is publishPositioned returning the position. The socket m excludes is
// kept with it in the history, so that a replay to that socket leaves it out too.
func (b *Broker) addAndPublish(ctx context.Context, m hub.Message, l history.Limits) (history.Position, error) {
	body, err := json.Marshal(envelope{Node: b.node, Msg: m})
	if err != nil {
		return history.Position{}, fmt.Errorf("cluster: encode: %w", err)
	}
	pub := history.Publication{Event: m.Event, Data: m.Data, UserID: m.UserID, Except: m.ExceptSocketID}
	pos, err := b.hist.AddAndPublish(ctx, m.Channel, pub, l, b.pubsubChannel(m.Channel), body)
	if err != nil {
		b.deliver(m)
		return history.Position{}, fmt.Errorf("cluster: publish with history: %w", err)
	}
	return pos, nil
}
