package hubtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/jetsocket/jetsocket/server/hub"
)

// ClusterFactory returns the backends of one or more nodes sharing one store (the
// memory backends are one node), new and empty; it closes them with t.Cleanup.
type ClusterFactory func(t *testing.T) []Backend

// Subscribe tells a broker that carries only the channels its node subscribes to
// (hub.ChannelBroker) that this node has subscribers on channels, as the hub does
// before it acknowledges a subscribe; other brokers need nothing.
func Subscribe(t *testing.T, b hub.Broker, channels ...string) {
	t.Helper()
	cb, ok := b.(hub.ChannelBroker)
	if !ok {
		return
	}
	for _, ch := range channels {
		if err := cb.Subscribe(context.Background(), ch); err != nil {
			t.Fatalf("subscribe %s: %v", ch, err)
		}
	}
}

// RunCluster runs the contract that spans nodes: what one node publishes reaches every
// node (itself included) once and in order, presence and counts are one store.
func RunCluster(t *testing.T, f ClusterFactory) {
	t.Run("BrokerReachesEveryNodeOnce", func(t *testing.T) { reachesEveryNode(t, f(t)) })
	t.Run("BrokerKeepsEachPublishersOrder", func(t *testing.T) { orderPerChannel(t, f(t)) })
	t.Run("BrokerCarriesInternalChannels", func(t *testing.T) { internalChannels(t, f(t)) })
	t.Run("BrokerCarriesOnlySubscribedChannels", func(t *testing.T) { onlySubscribed(t, f(t)) })
	t.Run("PresenceIsOneListAcrossNodes", func(t *testing.T) { presenceAcross(t, f(t)) })
	t.Run("CountsAreOneTotalAcrossNodes", func(t *testing.T) { countsAcross(t, f(t)) })
}

// started starts every node's broker with a recorder of its own and subscribes each
// node to channels.
func started(t *testing.T, nodes []Backend, channels ...string) []*recorder {
	out := make([]*recorder, len(nodes))
	for i, n := range nodes {
		out[i] = &recorder{}
		n.Broker.Start(out[i].deliver)
		Subscribe(t, n.Broker, channels...)
	}
	return out
}

func events(ms []hub.Message) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Channel+"/"+m.Event)
	}
	return out
}

// marked publishes a marker from the last node (the one the tests publish from, whose
// messages keep their order) on channel and waits until every recorder has
// want messages: a broker that delivered anything more than expected before the marker
// shows it then, without a timed wait.
// want is every node's count, or each one's.
func marked(t *testing.T, nodes []Backend, recs []*recorder, channel string, want ...int) [][]hub.Message {
	t.Helper()
	if err := nodes[len(nodes)-1].Broker.Publish(context.Background(), hub.Message{Channel: channel, Event: "marker"}); err != nil {
		t.Fatal(err)
	}
	out := make([][]hub.Message, len(recs))
	for i, r := range recs {
		got := r.waitFor(t, channel+"/marker")
		w := want[0]
		if len(want) > 1 {
			w = want[i]
		}
		if len(got) != w {
			t.Fatalf("node %d got %v, want %d messages", i, events(got), w)
		}
		out[i] = got
	}
	return out
}

// waitFor waits until the event (channel/event) arrived and returns what did.
func (r *recorder) waitFor(t *testing.T, ev string) []hub.Message {
	t.Helper()
	for n := 1; ; n++ {
		got := r.wait(t, n)
		if slices.Contains(events(got), ev) {
			return got
		}
	}
}

func reachesEveryNode(t *testing.T, nodes []Backend) {
	recs := started(t, nodes, "news")
	for i := range 3 {
		m := hub.Message{Channel: "news", Event: fmt.Sprint("e", i), Data: json.RawMessage(`{"n":1}`), ExceptSocketID: "1.2"}
		if err := nodes[len(nodes)-1].Broker.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i, got := range marked(t, nodes, recs, "news", 4) {
		if !slices.Equal(events(got), []string{"news/e0", "news/e1", "news/e2", "news/marker"}) {
			t.Fatalf("node %d: %v", i, events(got))
		}
		if m := got[0]; string(m.Data) != `{"n":1}` || m.ExceptSocketID != "1.2" {
			t.Fatalf("node %d: message changed on the way: %+v", i, m)
		}
	}
}

// orderPerChannel: every node publishes a sequence on one channel at once; each node
// gets each publisher's sequence whole and in order.
func orderPerChannel(t *testing.T, nodes []Backend) {
	recs := started(t, nodes, "seq")
	const each = 50
	var wg sync.WaitGroup
	for k, n := range nodes {
		wg.Go(func() {
			for i := range each {
				m := hub.Message{Channel: "seq", Event: strconv.Itoa(k), Data: json.RawMessage(strconv.Itoa(i))}
				if err := n.Broker.Publish(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, r := range recs {
		got := r.wait(t, each*len(nodes))
		next := make(map[string]int)
		for _, m := range got {
			if want := strconv.Itoa(next[m.Event]); string(m.Data) != want {
				t.Fatalf("node %d: publisher %s's message %s, want %s", i, m.Event, m.Data, want)
			}
			next[m.Event]++
		}
	}
}

// internalChannels: a user channel's messages and a termination reach every node
// subscribed to it, as any channel's.
func internalChannels(t *testing.T, nodes []Backend) {
	user := hub.UserChannel("u1")
	recs := started(t, nodes, user)
	last := nodes[len(nodes)-1].Broker
	for _, m := range []hub.Message{{Channel: user, Event: "note", Data: json.RawMessage(`1`)}, {Channel: user, Terminate: true}} {
		if err := last.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i, got := range marked(t, nodes, recs, user, 3) {
		if got[0].Event != "note" || !got[1].Terminate {
			t.Fatalf("node %d: %+v", i, got)
		}
	}
}

// onlySubscribed: a broker that carries only subscribed channels does not deliver a
// channel's messages to a node without subscribers on it (here node 1 of 3 or more).
func onlySubscribed(t *testing.T, nodes []Backend) {
	if _, ok := nodes[0].Broker.(hub.ChannelBroker); !ok || len(nodes) < 3 {
		t.Skip("every node gets every message")
	}
	recs := started(t, nodes[:1], "quiet", "loud")
	recs = append(recs, started(t, nodes[1:], "loud")...)
	for range 5 {
		if err := nodes[len(nodes)-1].Broker.Publish(context.Background(), hub.Message{Channel: "quiet", Event: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	wants := make([]int, len(nodes))
	for i := range wants {
		wants[i] = 1 // the marker alone
	}
	// The five quiet messages too: node 0 subscribed to them, and the publisher
	// delivers its own at once (to no subscriber, in a hub).
	wants[0], wants[len(nodes)-1] = 6, 6
	marked(t, nodes, recs, "loud", wants...)
}

func presenceAcross(t *testing.T, nodes []Backend) {
	ctx := context.Background()
	m := hub.Member{UserID: "u", Info: json.RawMessage(`{}`)}
	for i, n := range nodes {
		first, err := n.Presence.Join(ctx, "presence-x", fmt.Sprint(i, ".1"), m, 0)
		if err != nil || first != (i == 0) {
			t.Fatalf("node %d join: first %v %v", i, first, err)
		}
	}
	for i, n := range nodes {
		if ms, err := n.Presence.Members(ctx, "presence-x"); err != nil || !slices.Equal(ids(ms), []string{"u"}) {
			t.Fatalf("node %d members: %+v %v", i, ms, err)
		}
	}
	for i, n := range nodes {
		last, err := n.Presence.Leave(ctx, "presence-x", fmt.Sprint(i, ".1"), "u")
		if err != nil || last != (i == len(nodes)-1) {
			t.Fatalf("node %d leave: last %v %v", i, last, err)
		}
	}
}

func countsAcross(t *testing.T, nodes []Backend) {
	ctx := context.Background()
	for i, n := range nodes {
		if total, err := n.Counts.Add(ctx, "news", 2); err != nil || total != 2*(i+1) {
			t.Fatalf("node %d add: %d %v", i, total, err)
		}
	}
	for i, n := range nodes {
		if total, err := n.Counts.Get(ctx, "news"); err != nil || total != 2*len(nodes) {
			t.Fatalf("node %d get: %d %v", i, total, err)
		}
		if all, err := n.Counts.All(ctx, ""); err != nil || all["news"] != 2*len(nodes) {
			t.Fatalf("node %d all: %v %v", i, all, err)
		}
	}
}
