package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/hub"
)

var _ hub.Presence = (*Presence)(nil)

// Presence is every node's presence members (hub.Presence).
type Presence struct {
	*shard
	node string // this node's id: its entries
	up   upkeep
}

// The presence of every node: a members hash per channel (user id → info), a set of
// sockets per user and channel, and each node's entries (for reaping), changed by scripts.

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
func (p *Presence) Join(ctx context.Context, channel, socketID string, m hub.Member, max int) (bool, error) {
	first, err := p.join(ctx, p.up.writeEpoch(), hub.Entry{Channel: channel, SocketID: socketID, Member: m}, max)
	if err != nil && !errors.Is(err, hub.ErrFull) {
		// The subscribe fails, but the write may have landed: the resync takes it out.
		p.up.failedWrite(err, nil, "", 0)
	}
	return first, err
}

func (p *Presence) join(ctx context.Context, epoch string, e hub.Entry, max int) (bool, error) {
	c := p.joinCall(epoch, e, max)
	r, err := c.script.Run(ctx, p.rdb, c.keys, c.args...).Int()
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

func (p *Presence) joinCall(epoch string, e hub.Entry, max int) call {
	return call{joinScript,
		[]string{p.membersKey(e.Channel), p.socketsKey(e.Channel, e.Member.UserID), p.nodeKey(p.node, "presence"), p.key + "epoch"},
		[]any{e.Member.UserID, e.SocketID, string(e.Member.Info), max, entry(e.Channel, e.SocketID, e.Member.UserID), epoch}}
}

func (p *Presence) leaveCall(epoch, node, channel, socketID, userID string) call {
	return call{leaveScript,
		[]string{p.membersKey(channel), p.socketsKey(channel, userID), p.nodeKey(node, "presence"), p.key + "epoch"},
		[]any{userID, socketID, entry(channel, socketID, userID), epoch}}
}

// Leave removes the connection; last reports the user's last one on any node.
// A leave that fails is done again by the next resync, which announces it then.
func (p *Presence) Leave(ctx context.Context, channel, socketID, userID string) (bool, error) {
	last, err := p.leave(ctx, p.up.writeEpoch(), p.node, channel, socketID, userID)
	if err != nil {
		p.up.failedWrite(err, &hub.Entry{Channel: channel, SocketID: socketID, Member: hub.Member{UserID: userID}}, "", 0)
	}
	return last, err
}

func (p *Presence) leave(ctx context.Context, epoch, node, channel, socketID, userID string) (bool, error) {
	c := p.leaveCall(epoch, node, channel, socketID, userID)
	r, err := c.script.Run(ctx, p.rdb, c.keys, c.args...).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("cluster: presence leave: %w", err)
	case r == -2:
		return false, fmt.Errorf("cluster: presence leave: %w", errStale)
	}
	return r == 1, nil
}

// Members lists the channel's members on every node, sorted by user id.
func (p *Presence) Members(ctx context.Context, channel string) ([]hub.Member, error) {
	all, err := p.rdb.HGetAll(ctx, p.membersKey(channel)).Result()
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
