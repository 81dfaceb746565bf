// Package cluster is many-node mode: with REDIS_URL set, the hubs of every node share
// messages (Redis pub/sub), presence members and channel counts (Redis hashes and sets,
// changed by Lua scripts so each change is atomic), and the nodes watch each other: a
// node that stops its heartbeat is reaped by the others, its presence members removed
// (with member_removed to the subscribers) and its subscriptions uncounted.
//
// Redis is the only shared component; a single Redis server (or a primary with
// replicas) is assumed, not Redis Cluster, whose slots would split a script's keys.
// Encrypted channels' payloads are ciphertext before they reach the hub, so no
// plaintext of theirs crosses Redis.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

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
	Logger    *slog.Logger
}

// Reaper is told what a dead node's reaping removed (the hub: member_removed to the
// subscribers, webhooks).
type Reaper interface {
	MemberGone(ctx context.Context, channel, userID string)
	ChannelGone(channel string)
}

var (
	_ hub.Broker   = (*Node)(nil)
	_ hub.Presence = (*Node)(nil)
	_ hub.Counts   = (*Node)(nil)
	_ Reaper       = (*hub.Hub)(nil)
)

// Node is this process's membership of the cluster. It is the hub's Broker, Presence
// and Counts.
type Node struct {
	id   string
	rdb  *redis.Client
	ps   *redis.PubSub
	key  string // key prefix
	opts Options
	log  *slog.Logger

	deliver func(hub.Message) // set by Start, before the hub publishes anything

	mu     sync.Mutex
	reaper Reaper

	stop chan struct{}
	done sync.WaitGroup
}

// Open connects to Redis, subscribes to the app's message channel and starts the
// heartbeat. The Redis server must answer within 5 s.
func Open(ctx context.Context, o Options) (*Node, error) {
	ropts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// go-redis prints its own complaints (failed dials) with the standard logger; they
	// go to ours instead, as one warning each. Its logger is process-wide.
	redis.SetLogger(redisLog{o.Logger})
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	n := &Node{
		id: hex.EncodeToString(b[:]), rdb: redis.NewClient(ropts), key: "jetsocket:" + o.App + ":",
		opts: o, log: o.Logger, stop: make(chan struct{}),
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.rdb.Ping(pctx).Err(); err != nil {
		n.rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	n.ps = n.rdb.Subscribe(pctx, n.key+"messages")
	if _, err := n.ps.Receive(pctx); err != nil { // the subscription is in place
		n.ps.Close()
		n.rdb.Close()
		return nil, fmt.Errorf("redis: subscribe: %w", err)
	}
	if err := n.beat(pctx); err != nil {
		n.ps.Close()
		n.rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	n.done.Add(2)
	go n.every(n.heartbeatOnce)
	go n.every(n.reapOnce)
	n.log.Info("cluster node joined", "node", n.id)
	return n, nil
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis: " + fmt.Sprintf(format, v...))
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// SetReaper sets who hears of a dead node's members and channels.
func (n *Node) SetReaper(r Reaper) {
	n.mu.Lock()
	n.reaper = r
	n.mu.Unlock()
}

// Ping reports whether Redis answers (for /readyz).
func (n *Node) Ping(ctx context.Context) error { return n.rdb.Ping(ctx).Err() }

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
	err := n.ps.Close()
	return errors.Join(err, n.rdb.Close())
}

// ---------------------------------------------------------------- broker

type envelope struct {
	Node string      `json:"n"`
	Msg  hub.Message `json:"m"`
}

// Start delivers messages from the other nodes to deliver. The hub calls it once, when
// it is made, before anything is published.
func (n *Node) Start(deliver func(hub.Message)) {
	n.deliver = deliver
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		ch := n.ps.Channel()
		for {
			select {
			case <-n.stop:
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				var env envelope
				if err := json.Unmarshal([]byte(msg.Payload), &env); err != nil {
					n.log.Error("cluster: bad message", "err", err)
					continue
				}
				if env.Node != n.id {
					deliver(env.Msg)
				}
			}
		}
	}()
}

// Publish delivers m here at once and to every other node through Redis.
func (n *Node) Publish(ctx context.Context, m hub.Message) error {
	n.deliver(m)
	b, err := json.Marshal(envelope{Node: n.id, Msg: m})
	if err != nil {
		return fmt.Errorf("cluster: encode: %w", err)
	}
	if err := n.rdb.Publish(ctx, n.key+"messages", b).Err(); err != nil {
		return fmt.Errorf("cluster: publish to the other nodes: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------- presence

// Keys: members hash (user id → info), a user's sockets set, the node's entries set.
func (n *Node) membersKey(channel string) string { return n.key + "members:" + channel }
func (n *Node) socketsKey(channel, userID string) string {
	return n.key + "sockets:" + channel + ":" + userID
}
func (n *Node) nodeKey(node, what string) string { return n.key + "node:" + node + ":" + what }

// entry is a presence connection in its node's set, for reaping.
func entry(channel, socketID, userID string) string {
	return channel + "\x1f" + socketID + "\x1f" + userID
}

var joinScript = redis.NewScript(`
local first = redis.call('SCARD', KEYS[2]) == 0
if first and tonumber(ARGV[4]) > 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  return -1
end
if first then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[5])
if first then return 1 end
return 0`)

var leaveScript = redis.NewScript(`
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0`)

// Join records socketID as a connection of m.UserID on channel, across every node.
func (n *Node) Join(ctx context.Context, channel, socketID string, m hub.Member, max int) (bool, error) {
	r, err := joinScript.Run(ctx, n.rdb,
		[]string{n.membersKey(channel), n.socketsKey(channel, m.UserID), n.nodeKey(n.id, "presence")},
		m.UserID, socketID, string(m.Info), max, entry(channel, socketID, m.UserID)).Int()
	if err != nil {
		return false, fmt.Errorf("cluster: presence join: %w", err)
	}
	if r < 0 {
		return false, hub.ErrFull
	}
	return r == 1, nil
}

// Leave removes the connection; last reports the user's last one on any node.
func (n *Node) Leave(ctx context.Context, channel, socketID, userID string) (bool, error) {
	return n.leave(ctx, n.id, channel, socketID, userID)
}

func (n *Node) leave(ctx context.Context, node, channel, socketID, userID string) (bool, error) {
	r, err := leaveScript.Run(ctx, n.rdb,
		[]string{n.membersKey(channel), n.socketsKey(channel, userID), n.nodeKey(node, "presence")},
		userID, socketID, entry(channel, socketID, userID)).Int()
	if err != nil {
		return false, fmt.Errorf("cluster: presence leave: %w", err)
	}
	return r == 1, nil
}

// Members lists the channel's members on every node, sorted by user id.
func (n *Node) Members(ctx context.Context, channel string) ([]hub.Member, error) {
	all, err := n.rdb.HGetAll(ctx, n.membersKey(channel)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: presence members: %w", err)
	}
	out := make([]hub.Member, 0, len(all))
	for id, info := range all {
		out = append(out, hub.Member{UserID: id, Info: json.RawMessage(info)})
	}
	slices.SortFunc(out, func(a, b hub.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// ---------------------------------------------------------------- counts

var addScript = redis.NewScript(`
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if total <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2]) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
if total < 0 then return 0 end
return total`)

// Add changes channel's subscription count across every node by delta.
func (n *Node) Add(ctx context.Context, channel string, delta int) (int, error) {
	return n.add(ctx, n.id, channel, delta)
}

// add changes channel's total and node's share of it.
func (n *Node) add(ctx context.Context, node, channel string, delta int) (int, error) {
	t, err := addScript.Run(ctx, n.rdb, []string{n.key + "subscriptions", n.nodeKey(node, "subscriptions")}, channel, delta).Int()
	if err != nil {
		return 0, fmt.Errorf("cluster: channel count: %w", err)
	}
	return t, nil
}

// All lists the occupied channels starting with prefix and their counts.
func (n *Node) All(ctx context.Context, prefix string) (map[string]int, error) {
	all, err := n.rdb.HGetAll(ctx, n.key+"subscriptions").Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: channel counts: %w", err)
	}
	out := make(map[string]int)
	for ch, v := range all {
		if c, _ := strconv.Atoi(v); c > 0 && strings.HasPrefix(ch, prefix) {
			out[ch] = c
		}
	}
	return out, nil
}

// Get is channel's subscription count across every node.
func (n *Node) Get(ctx context.Context, channel string) (int, error) {
	c, err := n.rdb.HGet(ctx, n.key+"subscriptions", channel).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: channel count: %w", err)
	}
	return max(c, 0), nil
}

// ---------------------------------------------------------------- liveness

func (n *Node) beat(ctx context.Context) error {
	return n.rdb.HSet(ctx, n.key+"nodes", n.id, time.Now().UnixMilli()).Err()
}

// every runs f every Heartbeat until Close. The heartbeat and the reaping run on loops
// of their own: a long reaping must not delay this node's beat.
func (n *Node) every(f func()) {
	defer n.done.Done()
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			f()
		}
	}
}

func (n *Node) heartbeatOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Heartbeat)
	defer cancel()
	if err := n.beat(ctx); err != nil {
		n.log.Warn("cluster heartbeat failed", "node", n.id, "err", err)
	}
}

func (n *Node) reapOnce() {
	// A dead node with many connections takes a while; its lock lasts a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	n.reapDead(ctx)
}

// reapDead reaps every node whose heartbeat is older than DeadAfter. One node reaps
// each dead one: the first to take its lock.
func (n *Node) reapDead(ctx context.Context) {
	nodes, err := n.rdb.HGetAll(ctx, n.key+"nodes").Result()
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-n.opts.DeadAfter).UnixMilli()
	for id, v := range nodes {
		last, _ := strconv.ParseInt(v, 10, 64)
		if id == n.id || last >= cutoff {
			continue
		}
		ok, err := n.rdb.SetNX(ctx, n.key+"reaping:"+id, n.id, time.Minute).Result()
		if err != nil || !ok {
			continue
		}
		n.log.Warn("cluster node silent: reaping it", "node", id, "silent_for", time.Since(time.UnixMilli(last)).Round(time.Second).String())
		n.reap(ctx, id)
		n.rdb.HDel(ctx, n.key+"nodes", id)
	}
}

// reap removes what node holds: its presence connections (member_removed where it was a
// user's last) and its subscription counts (channel_vacated where they were the last).
func (n *Node) reap(ctx context.Context, node string) {
	n.mu.Lock()
	r := n.reaper
	n.mu.Unlock()
	entries, err := n.rdb.SMembers(ctx, n.nodeKey(node, "presence")).Result()
	if err != nil {
		n.log.Error("cluster reap: presence", "node", node, "err", err)
	}
	for _, e := range entries {
		parts := strings.SplitN(e, "\x1f", 3)
		if len(parts) != 3 {
			continue
		}
		last, err := n.leave(ctx, node, parts[0], parts[1], parts[2])
		if err != nil {
			n.log.Error("cluster reap: leave", "node", node, "channel", parts[0], "err", err)
			continue
		}
		if last && r != nil {
			r.MemberGone(ctx, parts[0], parts[2])
		}
	}
	counts, err := n.rdb.HGetAll(ctx, n.nodeKey(node, "subscriptions")).Result()
	if err != nil {
		n.log.Error("cluster reap: counts", "node", node, "err", err)
	}
	for ch, v := range counts {
		c, _ := strconv.Atoi(v)
		if c <= 0 {
			continue
		}
		total, err := n.add(ctx, node, ch, -c)
		if err != nil {
			n.log.Error("cluster reap: count", "node", node, "channel", ch, "err", err)
			continue
		}
		if total == 0 && r != nil {
			r.ChannelGone(ch)
		}
	}
	n.rdb.Del(ctx, n.nodeKey(node, "presence"), n.nodeKey(node, "subscriptions"))
}
