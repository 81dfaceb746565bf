package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/cluster"
	"github.com/jetsocket/jetsocket/server/hub"
)

// TestPerChannelSubscriptionsPerProcess is TestPerChannelSubscriptions with each node in
// a process of its own (this test binary again, as TestNodeProcess), so that each
// node's CPU time is its own (/proc/self/stat), and the publications made by a fourth
// node (here, without subscribers), so that the nodes' CPU is their receiving and
// delivering alone.
//
//	cd bench && go test -count=1 -run TestPerChannelSubscriptionsPerProcess -v ./cluster/
func TestPerChannelSubscriptionsPerProcess(t *testing.T) {
	url, _ := startRedis(t)
	for _, everything := range []bool{true, false} {
		name := map[bool]string{true: "every node every channel", false: "per-channel"}[everything]
		type child struct {
			cmd *exec.Cmd
			in  io.WriteCloser
			out *bufio.Scanner
		}
		var kids []child
		for i := range nodes {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNodeProcess$")
			cmd.Env = append(os.Environ(), "BENCH_NODE="+strconv.Itoa(i), "BENCH_REDIS="+url,
				"BENCH_EVERYTHING="+strconv.FormatBool(everything), "BENCH_APP="+fmt.Sprint("proc-", everything))
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer in.Close()
			kids = append(kids, child{cmd, in, bufio.NewScanner(out)})
		}
		expect := func(k child, word string) string {
			for k.out.Scan() {
				if line := k.out.Text(); strings.HasPrefix(line, word) {
					return line
				}
			}
			t.Fatalf("a node ended before %q", word)
			return ""
		}
		for _, k := range kids {
			expect(k, "ready")
		}
		for _, k := range kids {
			fmt.Fprintln(k.in, "go")
		}
		pub, err := cluster.Open(context.Background(), cluster.Options{URL: url, App: fmt.Sprint("proc-", everything), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		pub.Start(func(hub.Message) {})
		for p := range publications {
			m := hub.Message{Channel: fmt.Sprint("ch-", p%channels), Event: "e", Data: []byte(`{"n":1}`)}
			if err := pub.Publish(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		pub.Close()
		for _, k := range kids {
			expect(k, "delivered")
		}
		for i, k := range kids {
			fmt.Fprintln(k.in, "report")
			t.Logf("%s: node %d: %s", name, i, strings.TrimPrefix(expect(k, "report"), "report "))
		}
	}
}

// TestNodeProcess is one node of TestPerChannelSubscriptionsPerProcess; it does
// nothing unless started by it.
func TestNodeProcess(t *testing.T) {
	idx, err := strconv.Atoi(os.Getenv("BENCH_NODE"))
	if err != nil {
		t.Skip("a node of TestPerChannelSubscriptionsPerProcess")
	}
	ctx := context.Background()
	n, err := cluster.Open(ctx, cluster.Options{URL: os.Getenv("BENCH_REDIS"), App: os.Getenv("BENCH_APP"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	h := hub.New(n.Broker, n.Presence, n.Counts, hub.Hooks{}, slog.New(slog.DiscardHandler))
	n.SetLocal(h)
	var delivered atomic.Int64
	for ch := idx; ch < channels; ch += nodes {
		if _, err := h.Subscribe(ctx, &conn{id: fmt.Sprint(idx, ".", ch), got: &delivered}, fmt.Sprint("ch-", ch), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getenv("BENCH_EVERYTHING") == "true" {
		for ch := range channels {
			if err := n.Subscribe(ctx, fmt.Sprint("ch-", ch)); err != nil {
				t.Fatal(err)
			}
		}
	}
	in := bufio.NewScanner(os.Stdin)
	fmt.Println("ready")
	in.Scan() // go
	cpu0, rec0 := cpu(t, "self"), n.Received()
	want := int64(publications / nodes) // this node's third of the channels
	for delivered.Load() < want {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("delivered")
	in.Scan() // report
	// The last of its own publications may still be on their way back from Redis.
	for last := n.Received(); ; last = n.Received() {
		time.Sleep(100 * time.Millisecond)
		if n.Received() == last {
			break
		}
	}
	used, got := cpu(t, "self")-cpu0, n.Received()-rec0
	fmt.Printf("report received %d from Redis (%.0f per 1,000 publications), CPU %v (%v per 1,000 publications)\n",
		got, float64(got)*1000/publications, used.Round(time.Millisecond), (used * 1000 / publications).Round(time.Microsecond))
}
