package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

var (
	_ hub.Broker    = (*Broker)(nil)
	_ hub.Historian = (*Broker)(nil)
)

// Broker carries messages between the hubs of every node (hub.Broker) through Redis
// pub/sub, and keeps channels' history (hub.Historian, history.go).
type Broker struct {
	*shard
	node    string // this node's id: its own messages come back and are dropped
	ps      *redis.PubSub
	hist    *history.Redis
	policy  history.Policy
	log     *slog.Logger
	deliver func(hub.Message) // set by Start, before the hub publishes anything
	stop    chan struct{}
	done    sync.WaitGroup
}

type envelope struct {
	Node string      `json:"n"`
	Msg  hub.Message `json:"m"`
}

// Start delivers messages from the other nodes to deliver. The hub calls it once, when
// it is made, before anything is published.
func (b *Broker) Start(deliver func(hub.Message)) {
	b.deliver = deliver
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		ch := b.ps.Channel()
		for {
			select {
			case <-b.stop:
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				pos, body, positioned, err := history.ParsePublished(msg.Payload)
				var env envelope
				if err == nil {
					err = json.Unmarshal([]byte(body), &env)
				}
				if err != nil {
					b.log.Error("cluster: bad message", "err", err)
					continue
				}
				// A positioned message reaches its own node this way too: in the
				// order the script gave the offsets, with the other nodes' ones.
				if positioned {
					env.Msg.Offset, env.Msg.Epoch = pos.Offset, pos.Epoch
					deliver(env.Msg)
				} else if env.Node != b.node {
					deliver(env.Msg)
				}
			}
		}
	}()
}

// Publish delivers m here at once and to every other node through Redis. A message
// history keeps goes through Redis to every node, this one included (publishPositioned).
func (b *Broker) Publish(ctx context.Context, m hub.Message) error {
	if l := b.HistoryLimits(m.Channel); l.On() && m.Positioned() {
		return b.publishPositioned(ctx, m, l)
	}
	b.deliver(m)
	body, err := json.Marshal(envelope{Node: b.node, Msg: m})
	if err != nil {
		return fmt.Errorf("cluster: encode: %w", err)
	}
	if err := b.rdb.Publish(ctx, b.key+"messages", body).Err(); err != nil {
		return fmt.Errorf("cluster: publish to the other nodes: %w", err)
	}
	return nil
}

// openBroker opens the node's pub/sub connection, subscribed to the app's message
// channel.
func openBroker(ctx context.Context, sh *shard, node string, o Options) (*Broker, error) {
	b := &Broker{
		shard: sh, node: node, hist: history.NewRedis(sh.rdb, sh.key), policy: o.History,
		log: o.Logger, stop: make(chan struct{}),
	}
	b.ps = sh.rdb.Subscribe(ctx, sh.key+"messages")
	if _, err := b.ps.Receive(ctx); err != nil { // the subscription is in place
		b.ps.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return b, nil
}

// Close stops the delivery and closes the pub/sub connection; the shard's client is
// the node's to close.
func (b *Broker) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	err := b.ps.Close()
	b.done.Wait()
	return err
}
