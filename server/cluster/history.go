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

var _ hub.PositionBroker = (*Node)(nil)

// HistoryLimits is channel's history limits under Options.History.
func (n *Node) HistoryLimits(channel string) history.Limits {
	return n.opts.History.For(channel)
}

// Read reads channel's history from Redis.
func (n *Node) Read(ctx context.Context, channel string, q history.Query, l history.Limits) (history.Result, error) {
	return n.hist.Read(ctx, channel, q, l)
}

// publishPositioned appends m to its channel's history and publishes it to every node,
// in one script. When Redis does not answer, m is still delivered to this node's
// subscribers, without a position: a position must be the same on every node, and
// only Redis can give one. The clients that get it keep their last position, and a
// later recovery from it still finds every positioned publication after it.
func (n *Node) publishPositioned(ctx context.Context, m hub.Message, l history.Limits) error {
	_, err := n.addAndPublish(ctx, m, l)
	return err
}

// PublishAt is Publish that returns the position m was given (zero: none), for the
// ack of a client event (hub.PositionBroker).
func (n *Node) PublishAt(ctx context.Context, m hub.Message) (history.Position, error) {
	if l := n.HistoryLimits(m.Channel); l.On() && m.Positioned() {
		return n.addAndPublish(ctx, m, l)
	}
	return history.Position{}, n.Publish(ctx, m)
}

// addAndPublish is publishPositioned returning the position. The socket m excludes is
// kept with it in the history, so that a replay to that socket leaves it out too.
func (n *Node) addAndPublish(ctx context.Context, m hub.Message, l history.Limits) (history.Position, error) {
	body, err := json.Marshal(envelope{Node: n.id, Msg: m})
	if err != nil {
		return history.Position{}, fmt.Errorf("cluster: encode: %w", err)
	}
	pub := history.Publication{Event: m.Event, Data: m.Data, UserID: m.UserID, Except: m.ExceptSocketID}
	pos, err := n.hist.AddAndPublish(ctx, m.Channel, pub, l, n.key+"messages", body)
	if err != nil {
		n.deliver(m)
		return history.Position{}, fmt.Errorf("cluster: publish with history: %w", err)
	}
	return pos, nil
}
