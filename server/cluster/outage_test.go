package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/wire"
)

// redisProc is a redis-server that a test stops and starts again on the same port,
// with or without persistence (an append-only file synced on every write).
type redisProc struct {
	t       *testing.T
	bin     string
	port    int
	dir     string
	persist bool
	// bus is the cluster bus port of a Redis Cluster's master (0: not in a cluster).
	// Its nodes.conf stays in dir, so a master started again keeps its slots and peers.
	bus int
	// extra are more redis-server arguments.
	extra []string
	cmd   *exec.Cmd
}

func newRedis(t *testing.T, persist bool) *redisProc { return newRedisProc(t, persist, false) }

// newRedisProc starts a redis-server (with extra arguments); inCluster makes it a
// master-to-be of a Redis Cluster (newRedisCluster joins them).
func newRedisProc(t *testing.T, persist, inCluster bool, extra ...string) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not installed (scripts/test.sh installs it)")
		}
		t.Skip("redis-server not installed")
	}
	r := &redisProc{t: t, bin: bin, port: freeTCPPort(t), dir: t.TempDir(), persist: persist, extra: extra}
	if inCluster {
		// The bus port is given: its default, port+10000, is past 65535 for many of
		// the ports the system hands out.
		r.bus = freeTCPPort(t)
	}
	r.start()
	t.Cleanup(func() {
		if r.cmd != nil {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
	})
	return r
}

func (r *redisProc) url() string { return "redis://" + r.addr() + "/0" }

func (r *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (r *redisProc) start() {
	r.t.Helper()
	args := []string{"--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--dir", r.dir, "--save", ""}
	if r.persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if r.bus != 0 {
		args = append(args, "--cluster-enabled", "yes", "--cluster-port", fmt.Sprint(r.bus),
			"--cluster-config-file", "nodes.conf")
	}
	r.cmd = exec.Command(r.bin, append(args, r.extra...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server: with persistence as an operator would (SIGTERM, which writes
// the data out), without as a crash (SIGKILL).
func (r *redisProc) stop() {
	r.t.Helper()
	sig := syscall.SIGKILL
	if r.persist {
		sig = syscall.SIGTERM
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	_ = r.cmd.Wait()
	r.cmd = nil
}

// conn is a hub connection that records the events it gets.
type conn struct {
	id, user string
	mu       sync.Mutex
	frames   []string
	chans    hub.ConnChannels
}

func (c *conn) HubChannels() *hub.ConnChannels { return &c.chans }

func (c *conn) ID() string     { return c.id }
func (c *conn) UserID() string { return c.user }
func (c *conn) SendFrame(f wire.Frame) bool {
	c.mu.Lock()
	c.frames = append(c.frames, string(f.Text()))
	c.mu.Unlock()
	return true
}
func (c *conn) Close(string) {}
func (c *conn) got() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.frames, "\n")
}

// webhooks records the hub hooks of every node, as the webhooks they become.
type webhooks struct {
	mu  sync.Mutex
	evs []string
}

func (w *webhooks) add(s string) {
	w.mu.Lock()
	w.evs = append(w.evs, s)
	w.mu.Unlock()
}

func (w *webhooks) hooks() hub.Hooks {
	return hub.Hooks{
		ChannelOccupied: func(ch string) { w.add("channel_occupied " + ch) },
		ChannelVacated:  func(ch string) { w.add("channel_vacated " + ch) },
		MemberAdded:     func(ch, u string) { w.add("member_added " + ch + " " + u) },
		MemberRemoved:   func(ch, u string) { w.add("member_removed " + ch + " " + u) },
	}
}

// since lists, sorted, the events after the first n.
func (w *webhooks) since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(slices.Values(w.evs[n:]))
}

func (w *webhooks) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.evs)
}

// node is a cluster node with its hub.
type node struct {
	*Node
	hub *hub.Hub
}

func startNode(t *testing.T, url string, o Options, w *webhooks) node {
	t.Helper()
	n := open(t, url, "app", o)
	h := hub.New(n, n, n, w.hooks(), slog.New(slog.DiscardHandler))
	n.SetLocal(h)
	t.Cleanup(func() { n.Close() })
	return node{n, h}
}

func (n node) sub(t *testing.T, c *conn, channel string) {
	t.Helper()
	var m *hub.Member
	if strings.HasPrefix(channel, "presence-") {
		m = &hub.Member{UserID: c.user, Info: json.RawMessage(`{"name":"` + c.user + `"}`)}
	}
	if _, err := n.hub.Subscribe(context.Background(), c, channel, m, 0); err != nil {
		t.Fatalf("subscribe %s to %s: %v", c.id, channel, err)
	}
}

func (n node) syncs() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.Node.syncs
}

func (n node) peerCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.peers)
}

func (n node) settled() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.settling == nil && !n.dirty && !n.lost && !n.reaped
}

func memberIDs(t *testing.T, n node, channel string) string {
	ms, err := n.hub.Members(context.Background(), channel)
	if err != nil {
		return "error: " + err.Error()
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.UserID)
	}
	return strings.Join(ids, ",")
}

func channelList(n node) string {
	all, err := n.hub.Channels(context.Background(), "")
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for ch, c := range all {
		out = append(out, fmt.Sprintf("%s=%d", ch, c))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// waitFor polls cond for up to 20 s (a Redis restart and go-redis's reconnect backoff
// take a few seconds on a busy machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Connections leave and arrive while Redis is down; the leaves' and counts' writes
// fail. Once Redis is back (its data kept, or lost in a restart without persistence)
// every node writes its own entries again: the presence list and the channel counts
// are its connections' again, and the webhooks are the changes made during the outage,
// each once: none for what did not change.
func TestStateComesBackRightAfterARedisOutage(t *testing.T) {
	forEachLayout(t, func(t *testing.T, l layout) {
		for _, persist := range []bool{true, false} {
			t.Run(map[bool]string{true: "DataKept", false: "DataLost"}[persist], func(t *testing.T) {
				testStateAfterAnOutage(t, l, persist)
			})
		}
	})
}

func testStateAfterAnOutage(t *testing.T, l layout, persist bool) {
	r := l.start(t, persist)
	var w webhooks
	o := Options{Heartbeat: 100 * time.Millisecond, DeadAfter: time.Hour, Resync: time.Hour}
	a, b, c := startMember(t, r, o, &w), startMember(t, r, o, &w), startMember(t, r, o, &w)

	watch, a1, a2, a3, a4 := &conn{id: "1.0", user: "watch"}, &conn{id: "1.1", user: "ua"}, &conn{id: "1.2", user: "uc"}, &conn{id: "1.3", user: "ud"}, &conn{id: "1.4", user: "uf"}
	b1, b3, b4 := &conn{id: "2.1", user: "ub"}, &conn{id: "2.3", user: "ud"}, &conn{id: "2.4", user: "ug"}
	c1 := &conn{id: "3.1", user: "ue"}
	a.sub(t, watch, "presence-room")
	a.sub(t, a1, "presence-room")
	a.sub(t, a1, "news")
	a.sub(t, a2, "lonely")
	a.sub(t, a3, "presence-room")
	a.sub(t, a4, "shared")
	b.sub(t, b1, "presence-room")
	b.sub(t, b3, "presence-room")
	c.sub(t, c1, "shared")
	if got := memberIDs(t, a.view(), "presence-room"); got != "ua,ub,ud,watch" {
		t.Fatalf("members before: %s", got)
	}
	// A cluster that has run for a heartbeat: each node has seen the others alive.
	waitFor(t, "the nodes to see each other", func() bool {
		return a.peerCount() == 2 && b.peerCount() == 2 && c.peerCount() == 2
	})
	before := w.len()

	r.stop()
	ctx := context.Background()
	a.hub.Unsubscribe(ctx, a1, "presence-room") // ua's only connection: member_removed
	a.hub.Unsubscribe(ctx, a1, "news")          // the last subscriber: vacated
	a.hub.Unsubscribe(ctx, a2, "lonely")        // the last subscriber: vacated
	a.hub.Unsubscribe(ctx, a3, "presence-room") // ud is still on b: nothing
	a.hub.Unsubscribe(ctx, a4, "shared")        // c still has one: nothing
	b.hub.Subscribe(ctx, b4, "fresh", nil, 0)   // the first subscriber: occupied
	if got := w.since(before); len(got) != 0 {
		t.Fatalf("webhooks while Redis was down: %v", got)
	}
	syncs := [][]int{a.syncsEach(), b.syncsEach(), c.syncsEach()}
	r.start()

	waitFor(t, "the presence list and the channel counts of the connections", func() bool {
		for _, n := range []member{a, b, c} {
			if memberIDs(t, n.view(), "presence-room") != "ub,ud,watch" || channelList(n.view()) != "fresh=1,presence-room=3,shared=1" {
				return false
			}
		}
		return true
	})
	want := []string{"channel_occupied fresh", "channel_vacated lonely", "channel_vacated news", "member_removed presence-room ua"}
	waitFor(t, "the webhooks of the outage's changes", func() bool { return len(w.since(before)) >= len(want) })
	waitFor(t, "every node to be done", func() bool {
		return a.syncedAll(syncs[0]) && b.syncedAll(syncs[1]) && c.syncedAll(syncs[2]) &&
			a.settled() && b.settled() && c.settled()
	})
	// Writing everything again once more changes nothing and announces nothing.
	for _, n := range []member{a, b, c} {
		if err := n.resync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.since(before); !slices.Equal(got, want) {
		t.Fatalf("webhooks after the outage:\n%v\nwant\n%v", got, want)
	}
	if got := watch.got(); !strings.Contains(got, `"jetsocket:member_removed",{"channel":"presence-room","user_id":"ua"}`) ||
		strings.Contains(got, `"user_id":"ud"}`) || strings.Count(got, "member_removed") != 1 {
		t.Fatalf("a subscriber on the node saw:\n%s", got)
	}
}

// proxy stands between one node and Redis, so that a test can cut that node off alone.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target}
	ln.Close()
	p.open()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) open() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection: the node behind it cannot reach Redis.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A node cut off from Redis for longer than the reaping window is reaped although
// alive (its members removed, its channels vacated, as for a dead node). When it
// reaches Redis again it finds itself reaped and registers its connections again:
// they are members again, counted again, and announced again.
func TestANodeReapedWhileAliveRegistersAgain(t *testing.T) {
	forEachLayout(t, func(t *testing.T, l layout) { testReapedWhileAlive(t, l) })
}

func testReapedWhileAlive(t *testing.T, l layout) {
	r := l.start(t, false)
	var w webhooks
	a := startMember(t, r, Options{Heartbeat: 50 * time.Millisecond, DeadAfter: 400 * time.Millisecond, Resync: time.Hour}, &w)
	var cut cutter
	b := startMember(t, r, Options{Heartbeat: 50 * time.Millisecond, DeadAfter: time.Hour, Resync: time.Hour, Dialer: cut.dial}, &w)

	a1, b1 := &conn{id: "1.1", user: "ua"}, &conn{id: "2.1", user: "ub"}
	a.sub(t, a1, "presence-room")
	b.sub(t, b1, "presence-room")
	b.sub(t, b1, "news")
	before := w.len()

	cut.cut()
	reaped := []string{"channel_vacated news", "member_removed presence-room ub"}
	waitFor(t, "the cut-off node's reaping", func() bool { return slices.Equal(w.since(before), reaped) })
	if got := memberIDs(t, a.view(), "presence-room"); got != "ua" {
		t.Fatalf("members while b is reaped: %s", got)
	}
	if got := channelList(a.view()); got != "presence-room=1" {
		t.Fatalf("channels while b is reaped: %s", got)
	}
	reapedAt := w.len()
	syncs := b.syncs()

	cut.open()
	waitFor(t, "b's members and channels back", func() bool {
		for _, n := range []member{a, b} {
			if memberIDs(t, n.view(), "presence-room") != "ua,ub" || channelList(n.view()) != "news=1,presence-room=2" {
				return false
			}
		}
		return true
	})
	waitFor(t, "b to be done", func() bool { return b.syncs() > syncs && b.settled() })
	if err := b.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := w.since(reapedAt), []string{"channel_occupied news", "member_added presence-room ub"}; !slices.Equal(got, want) {
		t.Fatalf("webhooks after b came back: %v, want %v", got, want)
	}
	// a's subscriber hears ub come back (member_added, through Redis).
	waitFor(t, "member_added at a's subscriber", func() bool {
		return strings.Contains(a1.got(), `"jetsocket:member_added",{"channel":"presence-room","user_id":"ub","user_info":{"name":"ub"}}`)
	})
}

// beatNow runs n's regular heartbeat now, through its own loop.
func (n node) beatNow() { n.tick <- struct{}{} }

// A Redis restarted empty takes writes before the nodes notice it at their heartbeat:
// they must not land there (a leave would find nothing to remove, and announce nothing;
// a count would drop to 0 and announce a channel vacated that another node holds). They
// are refused, the node resyncs at once, and they are judged once every node has
// written its entries again. The heartbeats here are driven by the test, one at a time.
func TestWritesWaitForTheResyncAfterRedisLostItsData(t *testing.T) {
	forEachLayout(t, func(t *testing.T, l layout) { testWritesWaitForTheResync(t, l) })
}

func testWritesWaitForTheResync(t *testing.T, l layout) {
	r := l.start(t, false)
	var w webhooks
	o := Options{Heartbeat: time.Hour, DeadAfter: time.Hour, Resync: time.Hour}
	a, b := startMember(t, r, o, &w), startMember(t, r, o, &w)
	a1, a2, b1 := &conn{id: "1.1", user: "ua"}, &conn{id: "1.2", user: "ux"}, &conn{id: "2.1", user: "ub"}
	a.sub(t, a1, "presence-room")
	a.sub(t, a2, "news")
	b.sub(t, b1, "presence-room")
	ctx := context.Background()
	a.reapDead(ctx) // each sees the other alive
	b.reapDead(ctx)
	before := w.len()

	r.stop()
	r.start()
	waitFor(t, "both nodes to reach the new Redis", func() bool { return a.g.Ping(ctx) == nil && b.g.Ping(ctx) == nil })
	syncs := a.syncs()
	a.hub.Unsubscribe(ctx, a1, "presence-room") // ua's last connection
	a.hub.Unsubscribe(ctx, a2, "news")          // the last subscriber (refused too, or after a's resync)
	waitFor(t, "a to resync at once", func() bool { return a.syncs() > syncs })
	// b writes its entries again at its heartbeat; then a judges the refused writes.
	b.beatNow()
	waitFor(t, "b to resync", func() bool { return b.syncs() > 0 })
	waitFor(t, "both to settle", func() bool {
		for _, n := range []member{a, b} {
			if !n.settled() {
				n.beatNow()
			}
		}
		return a.settled() && b.settled()
	})
	want := []string{"channel_vacated news", "member_removed presence-room ua"}
	waitFor(t, "the webhooks", func() bool { return len(w.since(before)) >= len(want) })
	if got := w.since(before); !slices.Equal(got, want) {
		t.Fatalf("webhooks: %v, want %v", got, want)
	}
	for _, n := range []member{a, b} {
		if got := memberIDs(t, n.view(), "presence-room"); got != "ub" {
			t.Fatalf("members: %s", got)
		}
		if got := channelList(n.view()); got != "presence-room=1" {
			t.Fatalf("channels: %s", got)
		}
	}
}

// A node with more entries than one pipeline holds registers them all again, each
// announced once.
func TestResyncOfManyEntries(t *testing.T) {
	r := newRedis(t, false)
	var w webhooks
	a := startNode(t, r.url(), Options{Heartbeat: time.Hour, DeadAfter: time.Hour, Resync: time.Hour}, &w)
	const n, channels = 2*pipeBatch + 100, 50 // small channels: a subscribe's member_added reaches few
	for i := range n {
		a.sub(t, &conn{id: fmt.Sprint("1.", i), user: fmt.Sprint("u", i)}, fmt.Sprint("presence-", i%channels))
	}
	ctx := context.Background()
	members := func() int {
		total := 0
		for i := range channels {
			ms, _ := a.hub.Members(ctx, fmt.Sprint("presence-", i))
			total += len(ms)
		}
		return total
	}
	a.reap(ctx, a.id) // as another node would, taking everything
	if m := members(); m != 0 {
		t.Fatalf("%d members left after the reaping", m)
	}
	before := w.len()
	if err := a.resync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if m := members(); m != n {
		t.Fatalf("%d members after the resync, want %d", m, n)
	}
	if all, _ := a.hub.Channels(ctx, ""); len(all) != channels || all["presence-0"] != n/channels {
		t.Fatalf("channels: %v", all)
	}
	added, occupied := 0, 0
	for _, e := range w.since(before) {
		switch {
		case strings.HasPrefix(e, "member_added presence-"):
			added++
		case strings.HasPrefix(e, "channel_occupied presence-"):
			occupied++
		default:
			t.Fatalf("unexpected %s", e)
		}
	}
	if added != n || occupied != channels {
		t.Fatalf("announced %d members and %d channels, want %d and %d", added, occupied, n, channels)
	}
}
