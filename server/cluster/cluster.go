// Package cluster is many-node mode: with REDIS_URL set, the hubs of every node share
// messages (Redis pub/sub), presence members and channel counts (Redis hashes and sets,
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
	// History is which channels keep history (in Redis, see history.go); zero: none.
	History history.Policy
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

// Node is this process's membership of the cluster. It is the hub's Broker, Presence
// and Counts.
type Node struct {
	id   string
	rdb  *redis.Client
	ps   *redis.PubSub
	key  string // key prefix
	opts Options
	log  *slog.Logger
	hist *history.Redis

	deliver func(hub.Message) // set by Start, before the hub publishes anything

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
	if o.Resync <= 0 {
		o.Resync = 30 * time.Second
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
		opts: o, log: o.Logger, stop: make(chan struct{}), wake: make(chan struct{}, 1), tick: make(chan struct{}),
	}
	n.hist = history.NewRedis(n.rdb, n.key)
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
	if _, _, err := n.beat(pctx); err != nil {
		n.ps.Close()
		n.rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	// The nodes alive now are peers from the start (settle), not only from the first
	// reaping round.
	n.seePeers(pctx)
	// A new node has nothing to write again: it is in step with this data (settle).
	if err := n.rdb.HSet(pctx, n.key+"synced", n.id, n.epoch).Err(); err != nil {
		n.ps.Close()
		n.rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	n.lastSync = time.Now()
	n.done.Add(2)
	go n.heartbeats()
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

// SetLocal sets this node's hub: the truth about its entries, and who announces what
// a reaping or a resync changed. Until it is set, the node keeps no upkeep of its own
// entries.
func (n *Node) SetLocal(l Local) {
	n.mu.Lock()
	n.local = l
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
	n.rdb.HDel(ctx, n.key+"synced", n.id)
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
				pos, body, positioned, err := history.ParsePublished(msg.Payload)
				var env envelope
				if err == nil {
					err = json.Unmarshal([]byte(body), &env)
				}
				if err != nil {
					n.log.Error("cluster: bad message", "err", err)
					continue
				}
				// A positioned message reaches its own node this way too: in the
				// order the script gave the offsets, with the other nodes' ones.
				if positioned {
					env.Msg.Offset, env.Msg.Epoch = pos.Offset, pos.Epoch
					deliver(env.Msg)
				} else if env.Node != n.id {
					deliver(env.Msg)
				}
			}
		}
	}()
}

// Publish delivers m here at once and to every other node through Redis. A message
// history keeps goes through Redis to every node, this one included (publishPositioned).
func (n *Node) Publish(ctx context.Context, m hub.Message) error {
	if l := n.HistoryLimits(m.Channel); l.On() && m.Positioned() {
		return n.publishPositioned(ctx, m, l)
	}
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

// The scripts that write take the epoch the node writes into (KEYS[last], ARGV[last])
// and refuse (return -2) when Redis holds another or none: a write must not land in a
// Redis that lost its data before the node has written its entries again there.
var joinScript = redis.NewScript(`
if redis.call('GET', KEYS[4]) ~= ARGV[6] then return -2 end
local first = redis.call('SCARD', KEYS[2]) == 0
if first and tonumber(ARGV[4]) > 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[5])
if first then return 1 end
return 0`)

var leaveScript = redis.NewScript(`
if redis.call('GET', KEYS[4]) ~= ARGV[4] then return -2 end
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0`)

// Join records socketID as a connection of m.UserID on channel, across every node.
func (n *Node) Join(ctx context.Context, channel, socketID string, m hub.Member, max int) (bool, error) {
	first, err := n.join(ctx, n.writeEpoch(), hub.Entry{Channel: channel, SocketID: socketID, Member: m}, max)
	if err != nil && !errors.Is(err, hub.ErrFull) {
		// The subscribe fails, but the write may have landed: the resync takes it out.
		n.failedWrite(err, nil, "", 0)
	}
	return first, err
}

func (n *Node) join(ctx context.Context, epoch string, e hub.Entry, max int) (bool, error) {
	c := n.joinCall(epoch, e, max)
	r, err := c.script.Run(ctx, n.rdb, c.keys, c.args...).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("cluster: presence join: %w", err)
	case r == -2:
		return false, fmt.Errorf("cluster: presence join: %w", errStale)
	case r == -1:
		return false, hub.ErrFull
	}
	return r == 1, nil
}

// call is one run of a script: alone, or in a resync's pipeline.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

func (n *Node) joinCall(epoch string, e hub.Entry, max int) call {
	return call{joinScript,
		[]string{n.membersKey(e.Channel), n.socketsKey(e.Channel, e.Member.UserID), n.nodeKey(n.id, "presence"), n.key + "epoch"},
		[]any{e.Member.UserID, e.SocketID, string(e.Member.Info), max, entry(e.Channel, e.SocketID, e.Member.UserID), epoch}}
}

func (n *Node) leaveCall(epoch, node, channel, socketID, userID string) call {
	return call{leaveScript,
		[]string{n.membersKey(channel), n.socketsKey(channel, userID), n.nodeKey(node, "presence"), n.key + "epoch"},
		[]any{userID, socketID, entry(channel, socketID, userID), epoch}}
}

func (n *Node) addCall(epoch, node, channel string, delta int) call {
	return call{addScript,
		[]string{n.key + "subscriptions", n.nodeKey(node, "subscriptions"), n.key + "epoch"},
		[]any{channel, delta, epoch}}
}

// pipeBatch is how many script runs a resync sends per round trip: a node with many
// connections rewrites them in a few round trips, not one each.
const pipeBatch = 500

// runAll runs calls in pipelines of pipeBatch and returns their answers in order. The
// scripts are loaded first: a Redis that restarted has none cached.
func (n *Node) runAll(ctx context.Context, calls []call) ([]int64, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	for _, sc := range []*redis.Script{joinScript, leaveScript, addScript} {
		if err := sc.Load(ctx, n.rdb).Err(); err != nil {
			return nil, fmt.Errorf("load scripts: %w", err)
		}
	}
	out := make([]int64, 0, len(calls))
	for lo := 0; lo < len(calls); lo += pipeBatch {
		pipe := n.rdb.Pipeline()
		cmds := make([]*redis.Cmd, 0, pipeBatch)
		for _, c := range calls[lo:min(lo+pipeBatch, len(calls))] {
			cmds = append(cmds, c.script.EvalSha(ctx, pipe, c.keys, c.args...))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for _, cmd := range cmds {
			v, err := cmd.Int64()
			if err != nil {
				return nil, err
			}
			if v == -2 {
				return nil, errStale
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// errStale is a write refused because Redis lost its data since this node last wrote
// its entries there.
var errStale = errors.New("redis lost its data; this node has not written its entries again yet")

// Leave removes the connection; last reports the user's last one on any node.
// A leave that fails is done again by the next resync, which announces it then.
func (n *Node) Leave(ctx context.Context, channel, socketID, userID string) (bool, error) {
	last, err := n.leave(ctx, n.writeEpoch(), n.id, channel, socketID, userID)
	if err != nil {
		n.failedWrite(err, &hub.Entry{Channel: channel, SocketID: socketID, Member: hub.Member{UserID: userID}}, "", 0)
	}
	return last, err
}

func (n *Node) leave(ctx context.Context, epoch, node, channel, socketID, userID string) (bool, error) {
	c := n.leaveCall(epoch, node, channel, socketID, userID)
	r, err := c.script.Run(ctx, n.rdb, c.keys, c.args...).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("cluster: presence leave: %w", err)
	case r == -2:
		return false, fmt.Errorf("cluster: presence leave: %w", errStale)
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
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return -2 end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if total <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2]) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
if total < 0 then return 0 end
return total`)

// Add changes channel's subscription count across every node by delta.
// A change that fails is made by the next resync, which announces it then.
func (n *Node) Add(ctx context.Context, channel string, delta int) (int, error) {
	total, err := n.add(ctx, n.writeEpoch(), n.id, channel, delta)
	if err != nil {
		n.failedWrite(err, nil, channel, delta)
	}
	return total, err
}

// add changes channel's total and node's share of it.
func (n *Node) add(ctx context.Context, epoch, node, channel string, delta int) (int, error) {
	c := n.addCall(epoch, node, channel, delta)
	t, err := c.script.Run(ctx, n.rdb, c.keys, c.args...).Int()
	switch {
	case err != nil:
		return 0, fmt.Errorf("cluster: channel count: %w", err)
	case t == -2:
		return 0, fmt.Errorf("cluster: channel count: %w", errStale)
	}
	return t, nil
}

// writeEpoch is the data this node's entries are in, which its writes go to.
func (n *Node) writeEpoch() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
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

// beatScript records the node's heartbeat and reads the data's identity (epoch), made
// anew when Redis comes back without its data. It returns whether the node was missing
// from the list (reaped, or the data lost) and the epoch.
var beatScript = redis.NewScript(`
local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[3])
  epoch = ARGV[3]
end
return {new, epoch}`)

// beat says this node is alive. It reports whether the node had been left out of the
// list and whether Redis lost its data since the node last looked.
func (n *Node) beat(ctx context.Context) (reaped, lost bool, err error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, false, err
	}
	r, err := beatScript.Run(ctx, n.rdb, []string{n.key + "nodes", n.key + "epoch"},
		n.id, time.Now().UnixMilli(), hex.EncodeToString(b[:])).Slice()
	if err != nil {
		return false, false, fmt.Errorf("heartbeat: %w", err)
	}
	if len(r) != 2 {
		return false, false, fmt.Errorf("heartbeat: unexpected answer %v", r)
	}
	added, _ := r[0].(int64)
	epoch, _ := r[1].(string)
	n.mu.Lock()
	if n.epoch == "" { // Open
		n.epoch = epoch
	}
	// The node's writes keep going to the old epoch (and so fail) until its resync
	// has written its entries into the new one.
	lost = epoch != n.epoch
	if lost {
		n.lost, n.newEpoch = true, epoch
	}
	n.reaped = n.reaped || (added == 1 && !lost)
	n.mu.Unlock()
	return added == 1, lost, nil
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

// heartbeats beats every Heartbeat (or on n.tick), and at once when a refused write
// wakes it; only the regular beats count towards settle's wait.
func (n *Node) heartbeats() {
	defer n.done.Done()
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.heartbeatOnce(true)
		case <-n.tick:
			n.heartbeatOnce(true)
		case <-n.wake:
			n.heartbeatOnce(false)
		}
	}
}

func (n *Node) heartbeatOnce(regular bool) {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Heartbeat)
	defer cancel()
	if _, _, err := n.beat(ctx); err != nil {
		n.log.Warn("cluster heartbeat failed", "node", n.id, "err", err)
		n.mu.Lock()
		n.dirty = true // whatever happened meanwhile is checked once Redis answers
		n.mu.Unlock()
		return
	}
	n.mu.Lock()
	dirty, lost, reaped := n.dirty, n.lost, n.reaped
	due := dirty || lost || reaped || time.Since(n.lastSync) >= n.opts.Resync
	n.mu.Unlock()
	if !due {
		if regular {
			n.settle(ctx)
		}
		return
	}
	switch {
	case lost:
		n.log.Warn("cluster: Redis lost its data; writing this node's entries again", "node", n.id)
	case reaped:
		n.log.Warn("cluster: this node was reaped while alive; registering its entries again", "node", n.id)
	case dirty:
		n.log.Info("cluster: writing this node's entries again after failed writes", "node", n.id)
	}
	// A resync of many entries takes a while; it has the reaping's budget.
	rctx, rcancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer rcancel()
	if err := n.resync(rctx, lost); err != nil {
		n.log.Warn("cluster resync failed; trying again at the next heartbeat", "node", n.id, "err", err)
	}
}

func (n *Node) reapOnce() {
	// A dead node with many connections takes a while; its lock lasts a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	n.reapDead(ctx)
}

// seePeers notes the nodes in the list as alive.
func (n *Node) seePeers(ctx context.Context) {
	if nodes, err := n.rdb.HGetAll(ctx, n.key+"nodes").Result(); err == nil {
		n.notePeers(nodes)
	}
}

// notePeers records which other nodes beat within DeadAfter, from the list of nodes,
// and forgets those not seen for longer.
func (n *Node) notePeers(nodes map[string]string) {
	now := time.Now()
	cutoff := now.Add(-n.opts.DeadAfter).UnixMilli()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers == nil {
		n.peers = make(map[string]time.Time)
	}
	for id, v := range nodes {
		if last, _ := strconv.ParseInt(v, 10, 64); id != n.id && last >= cutoff {
			n.peers[id] = now
		}
	}
	for id, seen := range n.peers {
		if now.Sub(seen) > n.opts.DeadAfter {
			delete(n.peers, id)
		}
	}
}

// reapDead reaps every node whose heartbeat is older than DeadAfter. One node reaps
// each dead one: the first to take its lock.
func (n *Node) reapDead(ctx context.Context) {
	nodes, err := n.rdb.HGetAll(ctx, n.key+"nodes").Result()
	if err != nil {
		return
	}
	n.notePeers(nodes)
	cutoff := time.Now().Add(-n.opts.DeadAfter).UnixMilli()
	for id, v := range nodes {
		last, _ := strconv.ParseInt(v, 10, 64)
		if id == n.id || last >= cutoff {
			continue
		}
		lock := n.key + "reaping:" + id
		ok, err := n.rdb.SetNX(ctx, lock, n.id, time.Minute).Result()
		if err != nil || !ok {
			continue
		}
		// Looked at again under the lock: a node that beat since is alive, and one that
		// beats from now on sees the lock and waits for the reaping to end before it
		// registers itself again (resync).
		if v, err := n.rdb.HGet(ctx, n.key+"nodes", id).Int64(); err != nil || v >= cutoff {
			n.rdb.Del(ctx, lock)
			continue
		}
		n.log.Warn("cluster node silent: reaping it", "node", id, "silent_for", time.Since(time.UnixMilli(last)).Round(time.Second).String())
		n.reap(ctx, id)
		n.rdb.HDel(ctx, n.key+"nodes", id)
		n.rdb.HDel(ctx, n.key+"synced", id)
		n.rdb.Del(ctx, lock)
	}
}

// reap removes what node holds: its presence connections (member_removed where it was a
// user's last) and its subscription counts (channel_vacated where they were the last).
func (n *Node) reap(ctx context.Context, node string) {
	n.mu.Lock()
	r, epoch := n.local, n.epoch
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
		last, err := n.leave(ctx, epoch, node, parts[0], parts[1], parts[2])
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
		total, err := n.add(ctx, epoch, node, ch, -c)
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

// ---------------------------------------------------------------- resync

// journal is the writes of this node that failed (Redis away): leaves and count changes.
type journal struct {
	leaves []hub.Entry
	counts map[string]int // channel → the deltas that did not land
}

// settling is what a node does after Redis came back without its data: its failed
// writes, judged once every node has written its entries again.
type settling struct {
	journal
	local map[string]int // this node's counts when it wrote them again
	beats int
	// peers are the nodes alive before the data was lost, waited for until they have
	// written their entries again or until DeadAfter has passed since (dead, then).
	peers []string
	since time.Time
}

// maxFailedLeaves bounds the leaves kept while Redis is away (about 100 bytes each): a
// long outage on a busy node must not grow memory without end. Beyond it, the leaves
// are still redone by the resync; only their announcement after lost data is lost.
const maxFailedLeaves = 100_000

// failedWrite notes a write that did not land, so the next heartbeat resyncs.
// A write refused for a stale epoch wakes the heartbeat at once: the node resyncs into
// the new data without waiting for its next beat.
func (n *Node) failedWrite(err error, leave *hub.Entry, channel string, delta int) {
	if errors.Is(err, errStale) {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dirty = true
	if leave != nil && len(n.failed.leaves) < maxFailedLeaves {
		n.failed.leaves = append(n.failed.leaves, *leave)
	}
	if channel != "" {
		if n.failed.counts == nil {
			n.failed.counts = make(map[string]int)
		}
		n.failed.counts[channel] += delta
	}
}

// resync rewrites this node's entries from its connections (the hub's) and has the hub
// announce what that changed. After Redis lost its data (lost), what is written again
// was announced before and is not announced again; the failed writes are judged later
// (settle).
func (n *Node) resync(ctx context.Context, lost bool) error {
	n.mu.Lock()
	l := n.local
	n.mu.Unlock()
	if l == nil {
		return nil
	}
	// A reaping of this node under way would remove what is written now.
	if held, err := n.rdb.Exists(ctx, n.key+"reaping:"+n.id).Result(); err != nil {
		return fmt.Errorf("reaping lock: %w", err)
	} else if held > 0 {
		return errors.New("this node is being reaped; registering again once that ends")
	}
	err := l.Resync(ctx, func(ctx context.Context, st hub.State) (hub.Changes, error) {
		return n.write(ctx, st, lost)
	})
	if err != nil {
		n.mu.Lock()
		n.dirty = true
		n.mu.Unlock()
	}
	return err
}

// write makes this node's entries in Redis what st says, each change through the
// scripts the connections' own changes use, and returns what became different across
// every node (nothing after lost data: see resync).
func (n *Node) write(ctx context.Context, st hub.State, lost bool) (hub.Changes, error) {
	var c hub.Changes
	n.mu.Lock()
	epoch := n.epoch
	if lost {
		epoch = n.newEpoch
	}
	n.mu.Unlock()
	have, err := n.rdb.SMembers(ctx, n.nodeKey(n.id, "presence")).Result()
	if err != nil {
		return c, fmt.Errorf("read this node's presence: %w", err)
	}
	shares, err := n.rdb.HGetAll(ctx, n.nodeKey(n.id, "subscriptions")).Result()
	if err != nil {
		return c, fmt.Errorf("read this node's counts: %w", err)
	}

	// Counts first and presence after, as a subscribe does: occupied before member_added.
	chans := make(map[string]bool, len(st.Counts)+len(shares))
	for ch := range st.Counts {
		chans[ch] = true
	}
	for ch := range shares {
		chans[ch] = true
	}
	type change struct {
		channel string
		delta   int
	}
	var changes []change
	var calls []call
	for ch := range chans {
		share, _ := strconv.Atoi(shares[ch])
		if d := st.Counts[ch] - max(share, 0); d != 0 {
			changes = append(changes, change{ch, d})
			calls = append(calls, n.addCall(epoch, n.id, ch, d))
		}
	}
	want := make(map[string]hub.Entry, len(st.Presence))
	for _, e := range st.Presence {
		want[entry(e.Channel, e.SocketID, e.Member.UserID)] = e
	}
	var leaves, joins []hub.Entry
	for _, k := range have {
		if _, ok := want[k]; ok {
			delete(want, k) // in place: nothing to do
			continue
		}
		parts := strings.SplitN(k, "\x1f", 3)
		if len(parts) != 3 {
			n.rdb.SRem(ctx, n.nodeKey(n.id, "presence"), k)
			continue
		}
		leaves = append(leaves, hub.Entry{Channel: parts[0], SocketID: parts[1], Member: hub.Member{UserID: parts[2]}})
		calls = append(calls, n.leaveCall(epoch, n.id, parts[0], parts[1], parts[2]))
	}
	for _, e := range want {
		joins = append(joins, e)
		calls = append(calls, n.joinCall(epoch, e, 0)) // no cap: these are members already
	}
	res, err := n.runAll(ctx, calls)
	if err != nil {
		return c, fmt.Errorf("rewrite this node's entries: %w", err)
	}
	for i, ch := range changes {
		switch total := int(res[i]); {
		case ch.delta > 0 && total == ch.delta:
			c.Occupied = append(c.Occupied, ch.channel)
		case ch.delta < 0 && total == 0:
			c.Vacated = append(c.Vacated, ch.channel)
		}
	}
	res = res[len(changes):]
	for i, e := range leaves {
		if res[i] == 1 { // the user's last connection
			c.Left = append(c.Left, e)
		}
	}
	res = res[len(leaves):]
	for i, e := range joins {
		if res[i] == 1 { // the user's first connection
			c.Joined = append(c.Joined, e)
		}
	}

	// Which data this node has written its entries into, for the others' settle.
	if err := n.rdb.HSet(ctx, n.key+"synced", n.id, epoch).Err(); err != nil {
		return c, fmt.Errorf("record the resync: %w", err)
	}

	n.mu.Lock()
	failed := n.failed
	n.failed = journal{}
	if lost {
		// Merged with a settling not yet judged: both are failed writes of this node.
		if n.settling != nil {
			failed.leaves = append(failed.leaves, n.settling.leaves...)
			for ch, d := range n.settling.counts {
				if failed.counts == nil {
					failed.counts = make(map[string]int)
				}
				failed.counts[ch] += d
			}
		}
		var peers []string
		for id, seen := range n.peers {
			if time.Since(seen) <= n.opts.DeadAfter {
				peers = append(peers, id)
			}
		}
		n.settling = &settling{journal: failed, local: st.Counts, peers: peers, since: time.Now()}
	}
	n.dirty, n.lost, n.reaped = false, false, false
	n.epoch = epoch
	n.lastSync = time.Now()
	n.syncs++
	n.mu.Unlock()
	if lost {
		// What this node writes again was announced before Redis lost it.
		return hub.Changes{}, nil
	}
	return c, nil
}

// settle judges, once every node in the list and every node alive before the loss
// has written its entries into the new data (or DeadAfter has passed, for those that
// died meanwhile), the writes of this node that failed before:
// a leave announces member_removed if the user is a member nowhere now; a channel this
// node emptied is vacated if nobody holds it now, and one it first held while Redis was
// away is occupied if it alone holds it (so a channel that others held already is not
// announced twice).
func (n *Node) settle(ctx context.Context) {
	n.mu.Lock()
	st, l := n.settling, n.local
	if st == nil || l == nil {
		n.mu.Unlock()
		return
	}
	if st.beats++; st.beats < 2 {
		n.mu.Unlock()
		return
	}
	epoch := n.epoch
	n.mu.Unlock()
	// Every node in the list must have written its entries into this data first.
	nodes, err := n.rdb.HKeys(ctx, n.key+"nodes").Result()
	if err != nil {
		return
	}
	synced, err := n.rdb.HGetAll(ctx, n.key+"synced").Result()
	if err != nil {
		return
	}
	if time.Since(st.since) < n.opts.DeadAfter {
		nodes = append(nodes, st.peers...)
	}
	for _, id := range nodes {
		if synced[id] != epoch {
			return
		}
	}
	n.mu.Lock()
	if n.settling != st {
		n.mu.Unlock()
		return
	}
	n.settling = nil
	n.mu.Unlock()

	retry := func(err error) {
		n.log.Warn("cluster: judging the writes that failed before Redis lost its data", "node", n.id, "err", err)
		n.mu.Lock()
		if n.settling == nil {
			st.beats = 0
			n.settling = st
		}
		n.mu.Unlock()
	}
	type gone struct{ channel, user string }
	var members []gone
	seen := make(map[gone]bool)
	for _, e := range st.leaves {
		g := gone{e.Channel, e.Member.UserID}
		if seen[g] {
			continue
		}
		seen[g] = true
		ok, err := n.rdb.HExists(ctx, n.membersKey(e.Channel), e.Member.UserID).Result()
		if err != nil {
			retry(err)
			return
		}
		if !ok {
			members = append(members, g)
		}
	}
	var occupied, vacated []string
	for ch, d := range st.counts {
		mine := st.local[ch]
		total, err := n.Get(ctx, ch)
		if err != nil {
			retry(err)
			return
		}
		switch before := mine - d; {
		case before > 0 && mine == 0 && total == 0:
			vacated = append(vacated, ch)
		case before <= 0 && mine > 0 && total == mine:
			occupied = append(occupied, ch)
		}
	}
	for _, ch := range occupied {
		l.ChannelBack(ch)
	}
	for _, g := range members {
		l.MemberGone(ctx, g.channel, g.user)
	}
	for _, ch := range vacated {
		l.ChannelGone(ch)
	}
}
