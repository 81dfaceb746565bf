package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Liveness: every node beats into a hash of the nodes; a node silent for DeadAfter is
// reaped by the first other node that takes its lock.

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
		last, err := n.Presence.leave(ctx, epoch, node, parts[0], parts[1], parts[2])
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
		total, err := n.Counts.add(ctx, epoch, node, ch, -c)
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
