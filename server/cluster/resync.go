package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/server/hub"
)

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

// countChange is a channel's count moving by delta in a rewrite.
type countChange struct {
	channel string
	delta   int
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
	var changes []countChange
	var calls []call
	for ch := range chans {
		share, _ := strconv.Atoi(shares[ch])
		if d := st.Counts[ch] - max(share, 0); d != 0 {
			changes = append(changes, countChange{ch, d})
			calls = append(calls, n.Counts.addCall(epoch, n.id, ch, d))
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
		calls = append(calls, n.Presence.leaveCall(epoch, n.id, parts[0], parts[1], parts[2]))
	}
	for _, e := range want {
		joins = append(joins, e)
		calls = append(calls, n.Presence.joinCall(epoch, e, 0)) // no cap: these are members already
	}
	res, err := n.runAll(ctx, calls)
	if err != nil {
		return c, fmt.Errorf("rewrite this node's entries: %w", err)
	}
	c = changesOf(res, changes, leaves, joins)

	// Which data this node has written its entries into, for the others' settle.
	if err := n.rdb.HSet(ctx, n.key+"synced", n.id, epoch).Err(); err != nil {
		return c, fmt.Errorf("record the resync: %w", err)
	}

	n.recordSync(st, epoch, lost)
	if lost {
		// What this node writes again was announced before Redis lost it.
		return hub.Changes{}, nil
	}
	return c, nil
}

// changesOf reads what a rewrite changed across every node from its scripts' results,
// in the order write queued them: the counts' new totals, then the leaves and the joins
// (1: the user's last connection gone, or first one come).
func changesOf(res []int64, changes []countChange, leaves, joins []hub.Entry) hub.Changes {
	var c hub.Changes
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
	return c
}

// recordSync notes a finished write of st into epoch's data: the failed writes it
// replaces are forgotten, or, after lost data, kept with the peers alive then for
// settle to judge.
func (n *Node) recordSync(st hub.State, epoch string, lost bool) {
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
		total, err := n.Counts.Get(ctx, ch)
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

// writeEpoch is the data this node's entries are in, which its writes go to.
func (n *Node) writeEpoch() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}
