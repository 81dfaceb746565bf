package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

var (
	_ hub.Broker        = (*Broker)(nil)
	_ hub.Historian     = (*Broker)(nil)
	_ hub.ChannelBroker = (*Broker)(nil)
)

// UnsubscribeDelay is how long a channel's Redis subscription outlives its last
// subscriber on this node: a channel whose only subscriber reconnects (a page reload)
// keeps its subscription instead of an UNSUBSCRIBE and a SUBSCRIBE each time.
const UnsubscribeDelay = 5 * time.Second

// subscribeWait bounds how long a subscribe waits for Redis to confirm the channel's
// subscription: a Redis that does not answer must not hold subscribes up for ever.
const subscribeWait = 5 * time.Second

// Broker carries messages between the hubs of every node (hub.Broker) through Redis
// pub/sub, one pub/sub channel per hub channel, and keeps channels' history
// (hub.Historian, history.go). A node subscribes in Redis only to the channels with
// subscribers on it (hub.ChannelBroker), so it receives only their messages.
type Broker struct {
	*shard
	node    string // this node's id: its own messages come back and are dropped
	ps      *redis.PubSub
	hist    *history.Redis
	policy  history.Policy
	log     *slog.Logger
	delay   time.Duration     // UnsubscribeDelay, shorter in tests
	deliver func(hub.Message) // set by Start, before the hub publishes anything
	stop    chan struct{}
	done    sync.WaitGroup

	// received counts the messages Redis delivered to this node
	// (jetsocket_cluster_received_total).
	received atomic.Uint64

	// opMu orders the SUBSCRIBEs and UNSUBSCRIBEs of a channel as their decisions
	// were made: an unsubscribe decided before a subscribe is sent before it.
	opMu sync.Mutex
	mu   sync.Mutex
	subs map[string]*channelSub // hub channel → its Redis subscription
}

// channelSub is this node's Redis subscription to one channel.
type channelSub struct {
	refs  int           // this node's subscriptions to the channel
	ready chan struct{} // closed once Redis confirmed the SUBSCRIBE
	once  sync.Once
	// failed: the SUBSCRIBE could not be sent or was not confirmed in time (Redis
	// away); the later subscribers do not wait for a confirmation that comes only when
	// Redis answers again.
	failed bool
	timer  *time.Timer // the pending unsubscribe, after the last subscriber left
}

// pubsubChannel is the Redis pub/sub channel of a hub channel.
func (s *shard) pubsubChannel(channel string) string { return s.key + "ch:" + channel }

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
		ch := b.ps.ChannelWithSubscriptions()
		for {
			select {
			case <-b.stop:
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				switch msg := msg.(type) {
				case *redis.Subscription:
					if msg.Kind == "subscribe" || msg.Kind == "ssubscribe" {
						b.confirmed(strings.TrimPrefix(msg.Channel, b.key+"ch:"))
					}
				case *redis.Message:
					b.received.Add(1)
					b.receive(msg.Payload)
				}
			}
		}
	}()
}

// receive delivers a message from Redis to this node's subscribers.
func (b *Broker) receive(payload string) {
	pos, body, positioned, err := history.ParsePublished(payload)
	var env envelope
	if err == nil {
		err = json.Unmarshal([]byte(body), &env)
	}
	if err != nil {
		b.log.Error("cluster: bad message", "err", err)
		return
	}
	// A positioned message reaches its own node this way too: in the order the
	// script gave the offsets, with the other nodes' ones.
	if positioned {
		env.Msg.Offset, env.Msg.Epoch = pos.Offset, pos.Epoch
		b.deliver(env.Msg)
	} else if env.Node != b.node {
		b.deliver(env.Msg)
	}
}

// Received is how many messages Redis delivered to this node.
func (b *Broker) Received() uint64 { return b.received.Load() }

// Subscribe notes one more subscription of this node to channel and, for the first,
// subscribes to the channel in Redis and waits until Redis confirmed it (or ctx ends):
// every message published after it returns reaches this node. When Redis is away the
// subscription is made when it answers again (go-redis subscribes again on reconnect);
// what was published meanwhile is history's to recover.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	b.mu.Lock()
	s := b.subs[channel]
	fresh := s == nil
	if fresh {
		s = &channelSub{ready: make(chan struct{})}
		b.subs[channel] = s
	}
	s.refs++
	if s.timer != nil { // a subscriber back within the delay: the subscription stays
		s.timer.Stop()
		s.timer = nil
	}
	failed := s.failed
	b.mu.Unlock()
	if fresh {
		b.opMu.Lock()
		err := b.subscribe(ctx, b.pubsubChannel(channel))
		b.opMu.Unlock()
		if err != nil {
			b.mu.Lock()
			s.failed = true
			b.mu.Unlock()
			return fmt.Errorf("cluster: subscribe to %s: %w", channel, err)
		}
	} else if failed {
		return fmt.Errorf("cluster: subscribe to %s: waiting for Redis", channel)
	}
	ctx, cancel := context.WithTimeout(ctx, subscribeWait)
	defer cancel()
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		// Redis does not answer: the subscribers after this one do not wait too.
		b.mu.Lock()
		select {
		case <-s.ready:
		default:
			s.failed = true
		}
		b.mu.Unlock()
		return fmt.Errorf("cluster: subscribe to %s: %w", channel, ctx.Err())
	}
}

// confirmed marks channel's subscription as in place.
func (b *Broker) confirmed(channel string) {
	b.mu.Lock()
	s := b.subs[channel]
	b.mu.Unlock()
	if s != nil {
		s.once.Do(func() { close(s.ready) })
		b.mu.Lock()
		s.failed = false
		b.mu.Unlock()
	}
}

// Unsubscribe notes the end of one subscription of this node to channel; after the
// last, the Redis subscription ends once the delay has passed without a new one.
func (b *Broker) Unsubscribe(channel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subs[channel]
	if s == nil || s.refs == 0 {
		return
	}
	if s.refs--; s.refs > 0 {
		return
	}
	s.timer = time.AfterFunc(b.delay, func() { b.unsubscribe(channel, s) })
}

// unsubscribe ends the Redis subscription s to channel, unless a subscriber came back.
func (b *Broker) unsubscribe(channel string, s *channelSub) {
	select {
	case <-b.stop: // closed: the pub/sub connection is gone with every subscription
		return
	default:
	}
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	if b.subs[channel] != s || s.refs > 0 {
		b.mu.Unlock()
		return
	}
	delete(b.subs, channel)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.unsubscribeRedis(ctx, b.pubsubChannel(channel)); err != nil {
		// go-redis forgets it all the same, so a reconnect does not subscribe again.
		b.log.Warn("cluster: unsubscribe", "channel", channel, "err", err)
	}
}

// subscribed reports whether this node holds a Redis subscription to channel.
func (b *Broker) subscribed(channel string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[channel] != nil
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
	pub := b.rdb.Publish
	if b.sharded {
		pub = b.rdb.SPublish
	}
	if err := pub(ctx, b.pubsubChannel(m.Channel), body).Err(); err != nil {
		return fmt.Errorf("cluster: publish to the other nodes: %w", err)
	}
	return nil
}

// openBroker opens the node's pub/sub connection, subscribed to nothing yet: the hub's
// subscriptions add its channels (Subscribe).
func openBroker(sh *shard, node string, o Options) *Broker {
	delay := o.UnsubscribeDelay
	if delay <= 0 {
		delay = UnsubscribeDelay
	}
	b := &Broker{
		shard: sh, node: node, policy: o.History,
		log: o.Logger, delay: delay, stop: make(chan struct{}), subs: make(map[string]*channelSub),
	}
	if sh.sharded {
		// On Redis Cluster every channel of this shard is in one slot (its hash tag),
		// so one connection to that slot's master serves them all. go-redis opens it at
		// the first SSUBSCRIBE, to the master of that channel's slot, and to a random
		// node if it has to read before any: the shard's own channel (never published)
		// pins it from the start.
		b.hist, b.ps = history.NewRedisSharded(sh.rdb, sh.key), sh.rdb.SSubscribe(context.Background(), sh.key+"pin")
	} else {
		b.hist, b.ps = history.NewRedis(sh.rdb, sh.key), sh.rdb.Subscribe(context.Background())
	}
	return b
}

func (b *Broker) subscribe(ctx context.Context, ch string) error {
	if b.sharded {
		return b.ps.SSubscribe(ctx, ch)
	}
	return b.ps.Subscribe(ctx, ch)
}

func (b *Broker) unsubscribeRedis(ctx context.Context, ch string) error {
	if b.sharded {
		return b.ps.SUnsubscribe(ctx, ch)
	}
	return b.ps.Unsubscribe(ctx, ch)
}

// Close stops the delivery and closes the pub/sub connection; the shard's client is
// the node's to close.
func (b *Broker) Close() error {
	b.mu.Lock()
	for _, s := range b.subs {
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	b.mu.Unlock()
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	err := b.ps.Close()
	b.done.Wait()
	return err
}
