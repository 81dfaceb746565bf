// Package cluster is many-node mode: with REDIS_URL set, the hubs of every node share
// messages (Redis pub/sub, one channel each, a node subscribed only to the channels it
// has subscribers on: broker.go), presence members and channel counts (Redis hashes and sets,
// changed by Lua scripts so each change is atomic), and the nodes watch each other: a
// node that stops its heartbeat is reaped by the others, its presence members removed
// (with member_removed to the subscribers) and its subscriptions uncounted.
//
// Each node's own connections (its hub) are the truth about its entries in Redis: after
// a failed write, a Redis that answers again, a reaping of a node still alive, a Redis
// that restarted without its data (a random "epoch" key gone), and every Resync period,
// the node rewrites its entries from them (resync) and the hub announces what that
// changed. Writes carry the epoch they are meant for, so none lands in emptied data
// before its node has written its entries there again.
//
// One type per hub interface, over one shard (shard.go): Broker (broker.go, history.go),
// Presence (presence.go), Counts (counts.go); the node's upkeep is liveness.go (heartbeat,
// reaping) and resync.go. Node opens them together.
//
// Redis is the only shared component: one server (or a primary with replicas), or
// several independent ones (group.go), each channel on one of them by rendezvous hashing
// and a Node of this process on each, with its own upkeep there; or a Redis Cluster,
// where each such Node is a hash-tagged shard (one slot) over one ClusterClient.
// Encrypted channels' payloads are ciphertext before they reach the hub, so no
// plaintext of theirs crosses Redis.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// Options configures a Node. URL is required.
type Options struct {
	URL string
	// App separates the keys of apps that share one Redis (APP_ID).
	App string
	// Heartbeat is how often a node says it is alive and looks for dead ones; 5 s.
	Heartbeat time.Duration
	// DeadAfter is how long a silent node counts as alive; 15 s. A dead node's members
	// are gone within DeadAfter + Heartbeat.
	DeadAfter time.Duration
	// Resync is how often a node rewrites its shared entries from its connections when
	// nothing told it to sooner (a failed write, a reconnect, a reaping, a Redis that
	// lost its data are noticed at the next heartbeat); 30 s.
	Resync time.Duration
	Logger *slog.Logger
	// UnsubscribeDelay is how long a channel's Redis subscription outlives its last
	// subscriber on this node; UnsubscribeDelay (the constant) when 0.
	UnsubscribeDelay time.Duration
	// History is which channels keep history (in Redis, see history.go); zero: none.
	History history.Policy
	// Dialer opens the connections to Redis; go-redis's own when nil. Tests cut a node
	// off from Redis with it, in every layout (a proxy cannot stand in front of a Redis
	// Cluster, whose nodes name each other's own addresses).
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Local is this node's hub: its connections are the truth about this node's entries,
// and it announces (member events to the subscribers, webhooks) what the cluster's
// upkeep changed.
type Local interface {
	// Resync hands write the node's state, with its subscribes and unsubscribes held
	// off, and announces the Changes write returns.
	Resync(ctx context.Context, write func(context.Context, hub.State) (hub.Changes, error)) error
	MemberGone(ctx context.Context, channel, userID string)
	ChannelGone(channel string)
	ChannelBack(channel string)
}

var (
	_ hub.Broker    = (*Node)(nil)
	_ hub.Presence  = (*Node)(nil)
	_ hub.Counts    = (*Node)(nil)
	_ hub.Historian = (*Node)(nil)
	_ Local         = (*hub.Hub)(nil)
)

// Node is this process's membership of the cluster: the hub's Broker, Presence and
// Counts, one type each over one shard (broker.go, presence.go, counts.go), and the
// upkeep of this node's entries in Redis (liveness.go, resync.go).
type Node struct {
	*Broker
	*Presence
	*Counts
	*shard

	id   string
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	local    Local
	epoch    string        // the Redis data this node's entries are in (its key "epoch")
	newEpoch string        // the data the heartbeat found instead, after Redis lost it
	wake     chan struct{} // a refused write: beat now
	tick     chan struct{} // a regular beat now (tests drive the heartbeat with it)
	// failed holds the writes that failed since the last resync; settling holds them
	// after a Redis that lost its data, until the other nodes have written theirs again.
	failed   journal
	settling *settling
	lastSync time.Time
	// Why the next heartbeat resyncs; each stays set until a resync succeeds.
	dirty  bool // a write failed or Redis was away
	lost   bool // Redis came back without its data
	reaped bool // this node was missing from the list of nodes
	syncs  int  // resyncs done (tests wait on it)
	// peers is when each other node was last seen alive in the list: after Redis lost
	// its data (the list with it), settle waits for these to write theirs again.
	peers map[string]time.Time

	stop chan struct{}
	done sync.WaitGroup
}

// Open connects to Redis, opens the node's pub/sub connection and starts the
// heartbeat. The Redis server must answer within 5 s.
func Open(ctx context.Context, o Options) (*Node, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return openNode(ctx, o, hex.EncodeToString(b[:]))
}

// openNode opens a Node with id on the server of o.URL.
func openNode(ctx context.Context, o Options, id string) (*Node, error) {
	ropts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	ropts.Dialer = o.Dialer
	return openOn(ctx, o, id, &shard{rdb: redis.NewClient(ropts), key: "jetsocket:" + o.App + ":"})
}

// openOn opens a Node with id on shard sh.
func openOn(ctx context.Context, o Options, id string, sh *shard) (*Node, error) {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 15 * time.Second
	}
	if o.Resync <= 0 {
		o.Resync = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// go-redis prints its own complaints (failed dials) with the standard logger; they
	// go to ours instead, as one warning each. Its logger is process-wide.
	redis.SetLogger(redisLog{o.Logger})
	n := &Node{
		shard: sh, id: id, opts: o, log: o.Logger,
		stop: make(chan struct{}), wake: make(chan struct{}, 1), tick: make(chan struct{}),
	}
	n.Presence = &Presence{shard: sh, node: id, up: n}
	n.Counts = &Counts{shard: sh, node: id, up: n}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.rdb.Ping(pctx).Err(); err != nil {
		n.closeClient()
		return nil, fmt.Errorf("redis: %w", err)
	}
	n.Broker = openBroker(sh, id, o)
	if err := n.join(pctx); err != nil {
		n.Broker.Close()
		n.closeClient()
		return nil, fmt.Errorf("redis: %w", err)
	}
	n.done.Add(2)
	go n.heartbeats()
	go n.every(n.reapOnce)
	n.log.Info("cluster node joined", "node", n.id)
	return n, nil
}

// join registers this node in the list of nodes, in step with the data there.
func (n *Node) join(ctx context.Context) error {
	if _, _, err := n.beat(ctx); err != nil {
		return err
	}
	// The nodes alive now are peers from the start (settle), not only from the first
	// reaping round.
	n.seePeers(ctx)
	// A new node has nothing to write again: it is in step with this data (settle).
	if err := n.rdb.HSet(ctx, n.key+"synced", n.id, n.epoch).Err(); err != nil {
		return err
	}
	n.lastSync = time.Now()
	return nil
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis: " + fmt.Sprintf(format, v...))
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// SetLocal sets this node's hub: the truth about its entries, and who announces what
// a reaping or a resync changed. Until it is set, the node keeps no upkeep of its own
// entries.
func (n *Node) SetLocal(l Local) {
	n.mu.Lock()
	n.local = l
	n.mu.Unlock()
}

// Ping reports whether Redis answers (for /readyz): on a Redis Cluster, the master
// of this shard's slot. (A PING names no key, and go-redis sends it to any master:
// a dead master would answer "ready" through the others most of the time.)
func (n *Node) Ping(ctx context.Context) error {
	if n.sharded {
		return n.rdb.Exists(ctx, n.key+"epoch").Err()
	}
	return n.rdb.Ping(ctx).Err()
}

// Close leaves the cluster: this node's keys go (its connections have left already),
// then the connections to Redis.
func (n *Node) Close() error {
	close(n.stop)
	n.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// What this node still holds (connections that did not leave cleanly) is reaped
	// now rather than by the others later.
	n.reap(ctx, n.id)
	n.rdb.HDel(ctx, n.key+"nodes", n.id)
	n.rdb.HDel(ctx, n.key+"synced", n.id)
	err := n.Broker.Close()
	return errors.Join(err, n.closeClient())
}

// closeClient closes the shard's client, unless the group shares it (Redis Cluster).
func (n *Node) closeClient() error {
	if n.sharded {
		return nil
	}
	return n.rdb.Close()
}
