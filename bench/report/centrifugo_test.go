package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jetsocket/jetsocket/bench/load"
)

// A run with Centrifugo gets a table of Jetsocket (each client generation) beside it.
func TestCentrifugoTable(t *testing.T) {
	r := &Run{Settings: Settings{Ns: []int{2000}}, Results: []*load.Result{
		{Server: "jetsocket", Client: "v2", N: 2000, ConnectsPerSec: 3000, LatencyP99: 40, BytesPerConn: 16 << 10, HeapAllocPerConn: 5 << 10, StackPerConn: 4 << 10, GoroutinesPerConn: 1},
		{Server: "centrifugo", Client: "centrifugo", N: 2000, ConnectsPerSec: 2000, LatencyP99: 80, BytesPerConn: 64 << 10, HeapAllocPerConn: 16 << 10, StackPerConn: 20 << 10, GoroutinesPerConn: 2},
	}}
	var b bytes.Buffer
	r.Markdown(&b)
	out := b.String()
	for _, want := range []string{
		"| 2000 | v2 | connects/s | 3000 | 2000 | 1.50x faster | ≥ 1.2x |",
		"| 2000 | v2 | fan-out latency p99 (ms) | 40.0 | 80.0 | 2.00x lower | ≥ 1.5x |",
		"| 2000 | v2 | live heap + stacks per idle connection (KB) | 9.0 | 36.0 | 0.25x of centrifugo | |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	var none bytes.Buffer
	(&Run{Settings: Settings{Ns: []int{2000}}, Results: r.Results[:1]}).Markdown(&none)
	if strings.Contains(none.String(), "Against Centrifugo") {
		t.Error("a Centrifugo table without Centrifugo")
	}
}
