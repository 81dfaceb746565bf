package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/jetsocket/jetsocket/server/hub"
)

// The Redis layouts a deployment may have (many-nodes.md): one server, several
// independent servers (REDIS_URL lists them), a Redis Cluster. The outage tests run
// against each: the whole layout stopped and started again (with its data or without),
// and a node cut off from all of it until reaped.
//
// For a Redis Cluster "stopped" is every master stopped and started again with its
// nodes.conf (its slots and peers kept, its data kept by the append-only file or lost).
// Why every master and not one: with no replicas, a cluster missing a master stops
// answering for every slot once the others mark it failed (cluster-require-full-coverage),
// and before that it answers for the other masters' slots only, so the writes made
// "during the outage" would land for some channels and not for others; the assertions
// about which webhooks an outage causes would then depend on where the 16 shards fell.
// One master lost alone is TestOneMasterOfTheClusterRestartsEmpty.

// layout names a Redis layout and starts it.
type layout struct {
	name  string
	start func(t *testing.T, persist bool) *redisSet
}

var layouts = []layout{
	{"OneRedis", func(t *testing.T, persist bool) *redisSet {
		return &redisSet{t: t, procs: []*redisProc{newRedisProc(t, persist, false)}}
	}},
	{"TwoRedisServers", func(t *testing.T, persist bool) *redisSet {
		return &redisSet{t: t, procs: []*redisProc{newRedisProc(t, persist, false), newRedisProc(t, persist, false)}}
	}},
	{"RedisCluster", func(t *testing.T, persist bool) *redisSet {
		return &redisSet{t: t, procs: newRedisCluster(t, persist), cluster: true}
	}},
}

// forEachLayout runs f as a subtest per layout.
func forEachLayout(t *testing.T, f func(t *testing.T, l layout)) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) { f(t, l) })
	}
}

// redisSet is a layout's running redis-servers.
type redisSet struct {
	t       *testing.T
	procs   []*redisProc
	cluster bool
}

func (s *redisSet) urls() []string {
	var out []string
	for _, r := range s.procs {
		out = append(out, r.url())
	}
	return out
}

// stop stops every server (see redisProc.stop).
func (s *redisSet) stop() {
	for _, r := range s.procs {
		r.stop()
	}
}

// start starts every server again, and waits for a cluster to be ok again.
func (s *redisSet) start() {
	for _, r := range s.procs {
		r.start()
	}
	if s.cluster {
		waitClusterOK(s.t, s.procs)
	}
}

// open opens this process's membership of the layout, as main does from REDIS_URL and
// REDIS_CLUSTER.
func (s *redisSet) open(t *testing.T, o Options) *Group {
	t.Helper()
	o.App = "app"
	var g *Group
	var err error
	if s.cluster {
		g, err = OpenCluster(context.Background(), o, s.urls())
	} else {
		g, err = OpenGroup(context.Background(), o, s.urls())
	}
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// member is a node of the cluster in any layout: its Group (a Node per server or
// shard) and its hub. Its upkeep figures are its Nodes' together.
type member struct {
	g   *Group
	hub *hub.Hub
}

func startMember(t *testing.T, s *redisSet, o Options, w *webhooks) member {
	t.Helper()
	g := s.open(t, o)
	h := hub.New(g.Broker(), g.Presence(), g.Counts(), w.hooks(), slog.New(slog.DiscardHandler))
	g.SetLocal(h)
	t.Cleanup(func() { g.Close() })
	return member{g, h}
}

func (m member) sub(t *testing.T, c *conn, channel string) { node{hub: m.hub}.sub(t, c, channel) }

func (m member) each(f func(n node)) {
	for _, n := range m.g.nodes {
		f(node{Node: n})
	}
}

// syncs is how many resyncs its Nodes have done.
func (m member) syncs() (total int) {
	m.each(func(n node) { total += n.syncs() })
	return total
}

// syncedAll reports whether every Node resynced since before (per Node, from syncsEach).
func (m member) syncedAll(before []int) bool {
	i, all := 0, true
	m.each(func(n node) {
		all = all && n.syncs() > before[i]
		i++
	})
	return all
}

func (m member) syncsEach() (out []int) {
	m.each(func(n node) { out = append(out, n.syncs()) })
	return out
}

// peerCount is the fewest peers any of its Nodes has seen.
func (m member) peerCount() int {
	least := -1
	m.each(func(n node) {
		if c := n.peerCount(); least < 0 || c < least {
			least = c
		}
	})
	return least
}

func (m member) settled() bool {
	all := true
	m.each(func(n node) { all = all && n.settled() })
	return all
}

// resync writes its entries again on every server or shard.
func (m member) resync(ctx context.Context) error {
	var errs []error
	m.each(func(n node) { errs = append(errs, n.resync(ctx, false)) })
	return errors.Join(errs...)
}

// beatNow runs every Node's regular heartbeat now.
func (m member) beatNow() { m.each(func(n node) { n.beatNow() }) }

func (m member) reapDead(ctx context.Context) { m.each(func(n node) { n.reapDead(ctx) }) }

func (m member) view() node { return node{hub: m.hub} }

// cutter dials Redis for one node and can cut it off: every connection closed, every
// new dial refused, until open.
type cutter struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errors.New("cut off (test)")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func (c *cutter) open() {
	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
}
