package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/hub/hubtest"
)

var historyOn = history.Policy{Default: history.Limits{Size: 100, TTL: time.Minute}, Rules: []history.Rule{{Pattern: "off-*"}}}

// positions decodes the offsets and epochs of the events c got.
func positions(t *testing.T, c *conn) (offs []uint64, epochs []string) {
	t.Helper()
	c.mu.Lock()
	frames := append([]string(nil), c.frames...)
	c.mu.Unlock()
	for _, f := range frames {
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(f[1:]), &args); err != nil || len(args) != 2 {
			t.Fatalf("frame %q", f)
		}
		var p struct {
			Offset uint64 `json:"offset"`
			Epoch  string `json:"epoch"`
		}
		json.Unmarshal(args[1], &p)
		offs, epochs = append(offs, p.Offset), append(epochs, p.Epoch)
	}
	return offs, epochs
}

func seq(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// Publications from two nodes get one sequence of positions, the same on every node,
// in order on each; a client recovers on the other node.
func TestPositionsAreOneSequenceAcrossNodes(t *testing.T) {
	r := newRedis(t, false)
	var w webhooks
	a, b := startNode(t, r.url(), Options{History: historyOn}, &w), startNode(t, r.url(), Options{History: historyOn}, &w)
	ca, cb := &conn{id: "1.1", user: "a"}, &conn{id: "2.1", user: "b"}
	a.sub(t, ca, "news")
	b.sub(t, cb, "news")
	ctx := context.Background()
	for i := 1; i <= 20; i++ {
		n := a
		if i%2 == 0 {
			n = b
		}
		if err := n.hub.Publish(ctx, hub.Message{Channel: "news", Event: "e", Data: json.RawMessage(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every publication on both nodes", func() bool {
		oa, _ := positions(t, ca)
		ob, _ := positions(t, cb)
		return len(oa) == 20 && len(ob) == 20
	})
	oa, ea := positions(t, ca)
	ob, eb := positions(t, cb)
	if fmt.Sprint(oa) != seq(1, 20) || fmt.Sprint(ob) != seq(1, 20) || ea[0] == "" || ea[0] != eb[19] {
		t.Fatalf("node a %v %v, node b %v %v", oa, ea[:1], ob, eb[:1])
	}
	// A client of node a comes back on node b from offset 12.
	c2 := &conn{id: "2.2", user: "a"}
	_, rec, err := b.hub.SubscribeSince(ctx, c2, "news", nil, 0, &history.Position{Epoch: ea[0], Offset: 12})
	if err != nil || !rec.Recovered || rec.Replayed != 8 || rec.Position.Offset != 20 {
		t.Fatalf("%+v %v", rec, err)
	}
	rec.Finish()
	if got, _ := positions(t, c2); fmt.Sprint(got) != seq(13, 20) {
		t.Fatalf("replayed %v", got)
	}
	// A channel the policy leaves out, and member events, have no position.
	a.sub(t, ca, "off-x")
	a.hub.Publish(ctx, hub.Message{Channel: "off-x", Event: "e"})
	if got, _ := positions(t, ca); got[len(got)-1] != 0 {
		t.Fatalf("a channel without history: %v", got)
	}
}

// A Redis flushed starts a new epoch: a client coming back is not recovered.
func TestARedisFlushChangesTheEpoch(t *testing.T) {
	r := newRedis(t, false)
	var w webhooks
	a := startNode(t, r.url(), Options{History: historyOn}, &w)
	ctx := context.Background()
	ca := &conn{id: "1.1", user: "a"}
	a.sub(t, ca, "news")
	for range 3 {
		a.hub.Publish(ctx, hub.Message{Channel: "news", Event: "e"})
	}
	waitFor(t, "3 publications", func() bool { o, _ := positions(t, ca); return len(o) == 3 })
	_, before := positions(t, ca)
	if err := a.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	c2 := &conn{id: "1.2", user: "a"}
	_, rec, err := a.hub.SubscribeSince(ctx, c2, "news", nil, 0, &history.Position{Epoch: before[2], Offset: 2})
	if err != nil || rec.Recovered || rec.Replayed != 0 || rec.Position.Epoch == before[2] || rec.Position.Offset != 0 {
		t.Fatalf("after a flush: %+v %v", rec, err)
	}
	rec.Finish()
	a.hub.Publish(ctx, hub.Message{Channel: "news", Event: "e"})
	waitFor(t, "the publication after the flush", func() bool { o, _ := positions(t, c2); return len(o) == 1 })
	if o, e := positions(t, c2); o[0] != 1 || e[0] != rec.Position.Epoch {
		t.Fatalf("the new epoch counts from 1, as the subscriber was told: %v %v, told %+v", o, e, rec.Position)
	}
}

// During a Redis outage a node still delivers its publications to its own
// subscribers, without a position; the publish reports the error.
func TestAnOutageStillDeliversLocallyWithoutPosition(t *testing.T) {
	r := newRedis(t, false)
	p := newProxy(t, fmt.Sprintf("127.0.0.1:%d", r.port))
	var w webhooks
	a := startNode(t, "redis://"+p.addr+"/0", Options{History: historyOn}, &w)
	ctx := context.Background()
	ca := &conn{id: "1.1", user: "a"}
	a.sub(t, ca, "news")
	a.hub.Publish(ctx, hub.Message{Channel: "news", Event: "e"})
	waitFor(t, "the first publication", func() bool { o, _ := positions(t, ca); return len(o) == 1 })
	p.cut()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.hub.Publish(pctx, hub.Message{Channel: "news", Event: "e"}); err == nil {
		t.Fatal("a publish with Redis away reports no error")
	}
	o, _ := positions(t, ca)
	if len(o) != 2 || o[0] != 1 || o[1] != 0 {
		t.Fatalf("delivered locally without a position: %v", o)
	}
}

// The Redis broker with history against the contract the memory one meets too.
func TestRedisBrokerHistory(t *testing.T) {
	url := startRedis(t)
	apps := 0
	hubtest.RunHistory(t, func(t *testing.T, p history.Policy) hub.Broker {
		apps++
		n := open(t, url, fmt.Sprint("hist-", apps), Options{History: p})
		t.Cleanup(func() { n.Close() })
		return n
	})
}
