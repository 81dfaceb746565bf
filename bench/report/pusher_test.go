package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jetsocket/jetsocket/bench/load"
)

// A run with pusher clients gets a table of them beside each socket.io generation of the
// same server; a run without gets none.
func TestPusherTable(t *testing.T) {
	r := &Run{Settings: Settings{Ns: []int{2000}}, Results: []*load.Result{
		{Server: "jetsocket", Client: "v2", N: 2000, ConnectsPerSec: 3000, LatencyP99: 40, BytesPerConn: 16 << 10, HeapPerConn: 1, HeapAllocPerConn: 5 << 10, StackPerConn: 4 << 10, GoroutinesPerConn: 1},
		{Server: "jetsocket", Client: "v4+auth", N: 2000, ConnectsPerSec: 2000, LatencyP99: 50, BytesPerConn: 20 << 10},
		{Server: "jetsocket", Client: "pusher", N: 2000, ConnectsPerSec: 3300, LatencyP99: 30, BytesPerConn: 16 << 10, HeapPerConn: 1, HeapAllocPerConn: 4 << 10, StackPerConn: 5 << 10, GoroutinesPerConn: 1},
	}}
	var b bytes.Buffer
	r.Markdown(&b)
	out := b.String()
	for _, want := range []string{
		"| 2000 | jetsocket | v2 | connects/s | 3300 | 3000 | 1.10x of socket.io | ≥ 1.0x |",
		"| 2000 | jetsocket | v2 | memory per idle connection, RSS (KB) | 16.0 | 16.0 | 1.00x of socket.io | ≤ 1.1x |",
		"| 2000 | jetsocket | v2 | live heap + stacks per idle connection (KB) | 9.0 | 9.0 | 1.00x of socket.io | ≤ 1.1x |",
		"| 2000 | jetsocket | v4 | fan-out latency p99 (ms) | 30.0 | 50.0 | 0.60x of socket.io | ≤ 1.0x |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	var none bytes.Buffer
	(&Run{Settings: Settings{Ns: []int{2000}}, Results: r.Results[:2]}).Markdown(&none)
	if strings.Contains(none.String(), "Pusher protocol 7 against") {
		t.Error("a Pusher table without pusher clients")
	}
}
