package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
// One master lost alone is TestOneServerRestartsEmpty (back within the node timeout)
// and TestRedisClusterDownThenBack (past it).

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

// serverOf is the index in s.procs of the server (or the cluster's master) that holds
// channel for g.
func (s *redisSet) serverOf(t *testing.T, g *Group, channel string) int {
	t.Helper()
	i := shardOf(g.addrs, channel)
	if !s.cluster {
		return i // g.addrs are the servers in the order of s.urls()
	}
	ctx := context.Background()
	c := client(t, s.procs[0].url())
	slot, err := c.ClusterKeySlot(ctx, "{"+g.addrs[i]+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			for k, p := range s.procs {
				if p.addr() == r.Nodes[0].Addr {
					return k
				}
			}
		}
	}
	t.Fatalf("no master holds slot %d", slot)
	return -1
}

// One server of two, or one master of a Redis Cluster, restarts without its data while
// the rest keep theirs: the nodes write their entries again there alone, a user who left
// while it was away is announced gone once, and nothing on the servers that stayed up
// is announced again. (A cluster master is started again within its node timeout, 15 s,
// before the others mark it failed and stop answering for every slot.)
func TestOneServerRestartsEmpty(t *testing.T) {
	for _, l := range layouts[1:] {
		t.Run(l.name, func(t *testing.T) {
			r := l.start(t, false)
			var w webhooks
			o := Options{Heartbeat: 100 * time.Millisecond, DeadAfter: time.Hour, Resync: time.Hour}
			a, b, c := startMember(t, r, o, &w), startMember(t, r, o, &w), startMember(t, r, o, &w)
			lost := r.serverOf(t, a.g, "presence-room")
			// A channel held on a server that stays up.
			kept := ""
			for i := 0; kept == ""; i++ {
				if ch := fmt.Sprint("kept-", i); r.serverOf(t, a.g, ch) != lost {
					kept = ch
				}
			}
			watch, a1, b1, c1 := &conn{id: "1.0", user: "watch"}, &conn{id: "1.1", user: "ua"}, &conn{id: "2.1", user: "ub"}, &conn{id: "3.1", user: "uc"}
			a.sub(t, watch, "presence-room")
			a.sub(t, a1, "presence-room")
			b.sub(t, b1, "presence-room")
			b.sub(t, b1, kept)
			waitFor(t, "the nodes to see each other", func() bool {
				return a.peerCount() == 2 && b.peerCount() == 2 && c.peerCount() == 2
			})
			before := w.len()

			r.procs[lost].stop()
			ctx := context.Background()
			a.hub.Unsubscribe(ctx, a1, "presence-room") // ua's only connection: member_removed, later
			c.sub(t, c1, kept)                          // its server answers: counted now, nothing announced
			r.procs[lost].start()
			if r.cluster {
				waitClusterOK(t, r.procs)
			}
			waitFor(t, "the presence list and the counts of the connections", func() bool {
				for _, n := range []member{a, b, c} {
					if memberIDs(t, n.view(), "presence-room") != "ub,watch" || channelList(n.view()) != kept+"=2,presence-room=2" {
						return false
					}
				}
				return true
			})
			want := []string{"member_removed presence-room ua"}
			waitFor(t, "the webhook of the outage's change", func() bool { return len(w.since(before)) >= len(want) })
			waitFor(t, "every node to be done", func() bool { return a.settled() && b.settled() && c.settled() })
			for _, n := range []member{a, b, c} {
				if err := n.resync(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.since(before); !slices.Equal(got, want) {
				t.Fatalf("webhooks after the restart:\n%v\nwant\n%v", got, want)
			}
			if got := watch.got(); strings.Count(got, "member_removed") != 1 {
				t.Fatalf("a subscriber on the node saw:\n%s", got)
			}
		})
	}
}
