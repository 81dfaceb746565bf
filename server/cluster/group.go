package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

// Several independent Redis servers (REDIS_URL lists them): each channel lives on one
// of them, chosen by rendezvous hashing of the channel name over the servers, with all
// it has there (its pub/sub channel, presence, count and history), so that each script
// still runs on one server. Every server holds a whole Node of this process (same id):
// its heartbeat, its reaping of the dead nodes' entries there, its resync of the
// entries of its own channels. A node's presence and counts are spread over every
// server, so each server reaps for itself.
//
// Rendezvous hashing (highest random weight) rather than jump hash: it ranks servers by
// their address, not by their place in the list, so nodes that list the same servers
// in another order still agree, and adding a server moves only the channels it wins
// (about 1/n of them). Its cost, one hash per server per lookup, is nothing next to a
// Redis round trip for the handful of servers it is for.

// Group is this process's membership of the cluster over one or more Redis servers.
type Group struct {
	nodes  []*Node
	addrs  []string // each server's identity for the hash: host:port/db
	id     string
	client redis.UniversalClient // Redis Cluster's client, shared by every shard
}

// ClusterShards is how many shards a node keeps on Redis Cluster: each is a hash tag
// ({s0}…{s15}), so a slot of some master, holding the keys and pub/sub channels of the
// channels that hash to it together with this node's entries and upkeep for them: each
// script's keys are in one slot, and each shard's sharded pub/sub is one connection to
// its slot's master.
const ClusterShards = 16

// OpenCluster opens a Node per shard on the Redis Cluster that seeds (redis:// URLs of
// some of its nodes) lead to.
func OpenCluster(ctx context.Context, o Options, seeds []string) (*Group, error) {
	if len(seeds) == 0 {
		return nil, errors.New("redis cluster: no seed node")
	}
	co := &redis.ClusterOptions{Dialer: o.Dialer}
	for _, u := range seeds {
		ro, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis cluster: %w", err)
		}
		co.Addrs = append(co.Addrs, ro.Addr)
		co.Username, co.Password, co.TLSConfig = ro.Username, ro.Password, ro.TLSConfig
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	g := &Group{id: hex.EncodeToString(b[:]), client: redis.NewClusterClient(co)}
	for k := range ClusterShards {
		tag := fmt.Sprintf("s%d", k)
		sh := &shard{rdb: g.client, key: "jetsocket:" + o.App + ":{" + tag + "}:", sharded: true}
		n, err := openOn(ctx, o, g.id, sh)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("redis cluster: %w", err)
		}
		g.nodes, g.addrs = append(g.nodes, n), append(g.addrs, tag)
	}
	return g, nil
}

// OpenGroup opens a Node on each server of urls (one or more).
func OpenGroup(ctx context.Context, o Options, urls []string) (*Group, error) {
	if len(urls) == 0 {
		return nil, errors.New("redis: no server")
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	g := &Group{id: hex.EncodeToString(b[:])}
	seen := make(map[string]bool)
	for _, u := range urls {
		ropts, err := redis.ParseURL(u)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		addr := fmt.Sprintf("%s/%d", ropts.Addr, ropts.DB)
		if seen[addr] {
			g.Close()
			return nil, fmt.Errorf("redis: %s listed twice", addr)
		}
		seen[addr] = true
		o.URL = u
		n, err := openNode(ctx, o, g.id)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		g.nodes, g.addrs = append(g.nodes, n), append(g.addrs, addr)
	}
	return g, nil
}

// SplitURLs splits a REDIS_URL list (comma-separated) into its servers.
func SplitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// shardOf is the index of the server that holds channel: the highest weight of
// hash(server, channel).
func shardOf(addrs []string, channel string) int {
	best, bestW := 0, uint64(0)
	for i, a := range addrs {
		h := fnv.New64a()
		h.Write([]byte(a))
		h.Write([]byte{0})
		h.Write([]byte(channel))
		if w := mix(h.Sum64()); i == 0 || w > bestW {
			best, bestW = i, w
		}
	}
	return best
}

// mix is splitmix64's finalizer: FNV alone spreads similar names poorly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (g *Group) node(channel string) *Node { return g.nodes[shardOf(g.addrs, channel)] }

// ID is this node's id (the same on every server).
func (g *Group) ID() string { return g.id }

// Broker is the hub's Broker: one server's own, or one that routes by channel.
func (g *Group) Broker() hub.Broker {
	if len(g.nodes) == 1 {
		return g.nodes[0].Broker
	}
	return groupBroker{g}
}

// Presence is the hub's Presence.
func (g *Group) Presence() hub.Presence {
	if len(g.nodes) == 1 {
		return g.nodes[0].Presence
	}
	return groupPresence{g}
}

// Counts is the hub's Counts.
func (g *Group) Counts() hub.Counts {
	if len(g.nodes) == 1 {
		return g.nodes[0].Counts
	}
	return groupCounts{g}
}

// Received is how many messages the servers delivered to this node.
func (g *Group) Received() uint64 {
	var t uint64
	for _, n := range g.nodes {
		t += n.Received()
	}
	return t
}

// SetLocal sets this node's hub; each server's upkeep sees only its own channels.
func (g *Group) SetLocal(l Local) {
	if len(g.nodes) == 1 {
		g.nodes[0].SetLocal(l)
		return
	}
	for i, n := range g.nodes {
		n.SetLocal(shardLocal{Local: l, g: g, i: i})
	}
}

// Ping reports whether every server answers (for /readyz).
func (g *Group) Ping(ctx context.Context) error {
	var errs []error
	for i, n := range g.nodes {
		if err := n.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.addrs[i], err))
		}
	}
	return errors.Join(errs...)
}

// Close leaves every server.
func (g *Group) Close() error {
	var errs []error
	for _, n := range g.nodes {
		errs = append(errs, n.Close())
	}
	if g.client != nil {
		errs = append(errs, g.client.Close())
	}
	return errors.Join(errs...)
}

// shardLocal is the hub as one server's upkeep sees it: a resync writes there only the
// entries of the channels that server holds.
type shardLocal struct {
	Local
	g *Group
	i int
}

func (s shardLocal) Resync(ctx context.Context, write func(context.Context, hub.State) (hub.Changes, error)) error {
	return s.Local.Resync(ctx, func(ctx context.Context, st hub.State) (hub.Changes, error) {
		mine := hub.State{Counts: make(map[string]int)}
		for ch, c := range st.Counts {
			if shardOf(s.g.addrs, ch) == s.i {
				mine.Counts[ch] = c
			}
		}
		for _, e := range st.Presence {
			if shardOf(s.g.addrs, e.Channel) == s.i {
				mine.Presence = append(mine.Presence, e)
			}
		}
		return write(ctx, mine)
	})
}

var (
	_ hub.Broker        = groupBroker{}
	_ hub.ChannelBroker = groupBroker{}
	_ hub.Historian     = groupBroker{}
	_ hub.Presence      = groupPresence{}
	_ hub.Counts        = groupCounts{}
)

type groupBroker struct{ g *Group }

func (b groupBroker) Start(deliver func(hub.Message)) {
	for _, n := range b.g.nodes {
		n.Broker.Start(deliver)
	}
}

func (b groupBroker) Publish(ctx context.Context, m hub.Message) error {
	return b.g.node(m.Channel).Broker.Publish(ctx, m)
}

// Close closes nothing: the Group closes its servers' brokers with them.
func (b groupBroker) Close() error { return nil }

func (b groupBroker) Subscribe(ctx context.Context, channel string) error {
	return b.g.node(channel).Broker.Subscribe(ctx, channel)
}

func (b groupBroker) Unsubscribe(channel string) { b.g.node(channel).Broker.Unsubscribe(channel) }

func (b groupBroker) HistoryLimits(channel string) history.Limits {
	return b.g.node(channel).Broker.HistoryLimits(channel)
}

func (b groupBroker) Read(ctx context.Context, channel string, q history.Query, l history.Limits) (history.Result, error) {
	return b.g.node(channel).Broker.Read(ctx, channel, q, l)
}

type groupPresence struct{ g *Group }

func (p groupPresence) Join(ctx context.Context, channel, socketID string, m hub.Member, max int) (bool, error) {
	return p.g.node(channel).Presence.Join(ctx, channel, socketID, m, max)
}

func (p groupPresence) Leave(ctx context.Context, channel, socketID, userID string) (bool, error) {
	return p.g.node(channel).Presence.Leave(ctx, channel, socketID, userID)
}

func (p groupPresence) Members(ctx context.Context, channel string) ([]hub.Member, error) {
	return p.g.node(channel).Presence.Members(ctx, channel)
}

type groupCounts struct{ g *Group }

func (c groupCounts) Add(ctx context.Context, channel string, delta int) (int, error) {
	return c.g.node(channel).Counts.Add(ctx, channel, delta)
}

func (c groupCounts) Get(ctx context.Context, channel string) (int, error) {
	return c.g.node(channel).Counts.Get(ctx, channel)
}

// All merges every server's listing; a channel is on one server only, but a stale
// count left on another (the server list changed) is added rather than lost.
func (c groupCounts) All(ctx context.Context, prefix string) (map[string]int, error) {
	out := make(map[string]int)
	for i, n := range c.g.nodes {
		all, err := n.Counts.All(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.g.addrs[i], err)
		}
		for ch, v := range all {
			out[ch] += v
		}
	}
	return out, nil
}
