// Package soak runs many short connection lifecycles against a server (connect,
// subscribe, disconnect, or drop) and checks that the server's goroutines and memory
// return to where they were before: a leak of sessions, timers or buffers shows as
// growth that does not go away once every connection is gone.
package soak

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Sample is what the server reports about itself at one moment (GET /metrics).
type Sample struct {
	Goroutines  int64 // go_goroutines
	RSS         int64 // process_resident_memory_bytes
	HeapAlloc   int64 // go_memstats_heap_alloc_bytes; after a forced GC when a debug address is known
	Connections int64 // jetsocket_connections
	ForcedGC    bool  // HeapAlloc was read right after a GC
}

// Tolerance is how far above the baseline the settled figures may stay. Goroutines are
// exact once every connection is gone, up to a few the server runs on its own timers
// (webhook and reaper ticks, a connection of the metrics scrape itself). Memory is not
// exact: the Go runtime returns freed pages to the OS over minutes, and a heap between
// two GCs carries garbage; the slack is the larger of an absolute and a relative bound.
type Tolerance struct {
	Goroutines   int64
	RSSBytes     int64
	RSSFraction  float64
	HeapBytes    int64
	HeapFraction float64
}

// DefaultTolerance: 10,000 cycles that each left one goroutine behind exceed it 2,000
// times over, and 10,000 that each left 1 KB of live heap behind five times over (a
// session's polling buffers alone are several KB). RSS is the coarse check: it catches
// what lives outside the Go heap (stacks, cgo, unreturned pages).
var DefaultTolerance = Tolerance{
	Goroutines:   5,
	RSSBytes:     16 << 20,
	RSSFraction:  0.25,
	HeapBytes:    2 << 20,
	HeapFraction: 0.25,
}

// Check is one figure compared with its baseline.
type Check struct {
	Name     string
	Baseline int64
	Final    int64
	Limit    int64 // the most Final may be
	OK       bool
}

func (c Check) String() string {
	verdict := "ok"
	if !c.OK {
		verdict = "LEAK"
	}
	return fmt.Sprintf("%-11s baseline %s, after %s (limit %s): %s", c.Name, c.format(c.Baseline), c.format(c.Final), c.format(c.Limit), verdict)
}

func (c Check) format(v int64) string {
	if c.Name == "goroutines" || c.Name == "connections" {
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("%.1f MB", float64(v)/(1<<20))
}

// Judge compares the settled sample with the baseline. Connections must be back to the
// baseline exactly; the heap is judged only when both samples were read after a forced GC
// (otherwise it says more about when the last GC ran than about leaks).
func Judge(base, final Sample, tol Tolerance) []Check {
	checks := []Check{
		limit("connections", base.Connections, final.Connections, 0, 0),
		limit("goroutines", base.Goroutines, final.Goroutines, tol.Goroutines, 0),
		limit("rss", base.RSS, final.RSS, tol.RSSBytes, tol.RSSFraction),
	}
	if base.ForcedGC && final.ForcedGC {
		checks = append(checks, limit("live heap", base.HeapAlloc, final.HeapAlloc, tol.HeapBytes, tol.HeapFraction))
	}
	return checks
}

func limit(name string, base, final, abs int64, frac float64) Check {
	slack := max(abs, int64(float64(base)*frac))
	return Check{Name: name, Baseline: base, Final: final, Limit: base + slack, OK: final <= base+slack}
}

// Passed reports whether every check passed.
func Passed(checks []Check) bool {
	for _, c := range checks {
		if !c.OK {
			return false
		}
	}
	return len(checks) > 0
}

// parseMetrics reads the figures of a Sample from the Prometheus text format.
func parseMetrics(r io.Reader) (Sample, error) {
	var s Sample
	want := map[string]*int64{
		"go_goroutines":                 &s.Goroutines,
		"process_resident_memory_bytes": &s.RSS,
		"go_memstats_heap_alloc_bytes":  &s.HeapAlloc,
		"jetsocket_connections":         &s.Connections,
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		dst := want[name]
		if !ok || dst == nil {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return s, fmt.Errorf("metric %s: %q is not a number", name, value)
		}
		*dst = int64(f)
		delete(want, name)
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read metrics: %w", err)
	}
	if len(want) > 0 {
		var missing []string
		for k := range want {
			missing = append(missing, k)
		}
		return s, fmt.Errorf("metrics: missing %s", strings.Join(missing, ", "))
	}
	return s, nil
}
