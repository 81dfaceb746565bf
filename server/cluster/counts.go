package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/hub"
)

var _ hub.Counts = (*Counts)(nil)

// Counts is every node's channel subscription counts (hub.Counts): a hash of the
// totals and one per node of its share, for reaping, changed together by a script.
type Counts struct {
	*shard
	node string // this node's id: its share
	up   upkeep
}

var addScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return -2 end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if total <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2]) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
if total < 0 then return 0 end
return total`)

// Add changes channel's subscription count across every node by delta.
// A change that fails is made by the next resync, which announces it then.
func (c *Counts) Add(ctx context.Context, channel string, delta int) (int, error) {
	total, err := c.add(ctx, c.up.writeEpoch(), c.node, channel, delta)
	if err != nil {
		c.up.failedWrite(err, nil, channel, delta)
	}
	return total, err
}

// add changes channel's total and node's share of it.
func (c *Counts) add(ctx context.Context, epoch, node, channel string, delta int) (int, error) {
	k := c.addCall(epoch, node, channel, delta)
	t, err := k.script.Run(ctx, c.rdb, k.keys, k.args...).Int()
	switch {
	case err != nil:
		return 0, fmt.Errorf("cluster: channel count: %w", err)
	case t == -2:
		return 0, fmt.Errorf("cluster: channel count: %w", errStale)
	}
	return t, nil
}

// writeEpoch is the data this node's entries are in, which its writes go to.

// All lists the occupied channels starting with prefix and their counts.
func (c *Counts) All(ctx context.Context, prefix string) (map[string]int, error) {
	all, err := c.rdb.HGetAll(ctx, c.key+"subscriptions").Result()
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
func (c *Counts) Get(ctx context.Context, channel string) (int, error) {
	v, err := c.rdb.HGet(ctx, c.key+"subscriptions", channel).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: channel count: %w", err)
	}
	return max(v, 0), nil
}

func (c *Counts) addCall(epoch, node, channel string, delta int) call {
	return call{addScript,
		[]string{c.key + "subscriptions", c.nodeKey(node, "subscriptions"), c.key + "epoch"},
		[]any{channel, delta, epoch}}
}
