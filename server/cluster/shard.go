package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/hub"
)

// shard is one Redis server and the app's keys on it, shared by the Broker, Presence,
// Counts and the node's upkeep (as centrifuge's RedisShard is by its broker and
// presence manager).
type shard struct {
	rdb redis.UniversalClient
	key string // key prefix: "jetsocket:<app>:" ("jetsocket:<app>:{s<n>}:" on Redis Cluster)
	// sharded: Redis Cluster, where pub/sub is SSUBSCRIBE/SPUBLISH and the client is
	// shared by the group's shards (closed by the group, not by each Node).
	sharded bool
}

// upkeep is what presence and counts writes need of the node's liveness and resync:
// the data they write into, and where a write that failed is noted for the resync.
type upkeep interface {
	writeEpoch() string
	failedWrite(err error, leave *hub.Entry, channel string, delta int)
}

// Keys: members hash (user id → info), a user's sockets set, the node's entries set.
func (s *shard) membersKey(channel string) string { return s.key + "members:" + channel }
func (s *shard) socketsKey(channel, userID string) string {
	return s.key + "sockets:" + channel + ":" + userID
}
func (s *shard) nodeKey(node, what string) string { return s.key + "node:" + node + ":" + what }

// call is one run of a script: alone, or in a resync's pipeline.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// pipeBatch is how many script runs a resync sends per round trip: a node with many
// connections rewrites them in a few round trips, not one each.
const pipeBatch = 500

// runAll runs calls in pipelines of pipeBatch and returns their answers in order. The
// scripts are loaded first: a Redis that restarted has none cached.
func (s *shard) runAll(ctx context.Context, calls []call) ([]int64, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	for _, sc := range []*redis.Script{joinScript, leaveScript, addScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("load scripts: %w", err)
		}
	}
	out := make([]int64, 0, len(calls))
	for lo := 0; lo < len(calls); lo += pipeBatch {
		pipe := s.rdb.Pipeline()
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
