package soak

import (
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	tol := Tolerance{Goroutines: 5, RSSBytes: 16 << 20, RSSFraction: 0.25, HeapBytes: 4 << 20, HeapFraction: 0.25}
	base := Sample{Goroutines: 11, RSS: 100 << 20, HeapAlloc: 8 << 20, ForcedGC: true}
	tests := []struct {
		name   string
		final  Sample
		failed []string // checks that must fail; the others must pass
	}{
		{"back to baseline", base, nil},
		{"within every slack", Sample{Goroutines: 16, RSS: 125 << 20, HeapAlloc: 12 << 20, ForcedGC: true}, nil},
		{"below baseline", Sample{Goroutines: 9, RSS: 80 << 20, HeapAlloc: 6 << 20, ForcedGC: true}, nil},
		{"one goroutine too many", Sample{Goroutines: 17, RSS: base.RSS, HeapAlloc: base.HeapAlloc, ForcedGC: true}, []string{"goroutines"}},
		{"a goroutine per cycle", Sample{Goroutines: 10_011, RSS: base.RSS, HeapAlloc: base.HeapAlloc, ForcedGC: true}, []string{"goroutines"}},
		// 25% of 100 MB is more than 16 MB: the relative bound applies.
		{"RSS just over the relative bound", Sample{Goroutines: 11, RSS: 125<<20 + 1, HeapAlloc: base.HeapAlloc, ForcedGC: true}, []string{"rss"}},
		{"heap just over the absolute bound", Sample{Goroutines: 11, RSS: base.RSS, HeapAlloc: 12<<20 + 1, ForcedGC: true}, []string{"live heap"}},
		{"a connection left open", Sample{Goroutines: 11, RSS: base.RSS, HeapAlloc: base.HeapAlloc, Connections: 1, ForcedGC: true}, []string{"connections"}},
		{"everything leaked", Sample{Goroutines: 500, RSS: 1 << 30, HeapAlloc: 200 << 20, Connections: 3, ForcedGC: true}, []string{"connections", "goroutines", "rss", "live heap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := Judge(base, tt.final, tol)
			if len(checks) != 4 {
				t.Fatalf("%d checks, want 4: %v", len(checks), checks)
			}
			var failed []string
			for _, c := range checks {
				if !c.OK {
					failed = append(failed, c.Name)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tt.failed, ",") {
				t.Fatalf("failed %v, want %v: %v", failed, tt.failed, checks)
			}
			if Passed(checks) != (len(tt.failed) == 0) {
				t.Fatalf("Passed = %v with failures %v", Passed(checks), failed)
			}
		})
	}
}

// Without a forced GC on both sides the heap says when the last GC ran, not whether
// anything leaked: it is not judged.
func TestJudgeSkipsHeapWithoutForcedGC(t *testing.T) {
	base := Sample{Goroutines: 10, RSS: 50 << 20, HeapAlloc: 1 << 20}
	final := Sample{Goroutines: 10, RSS: 50 << 20, HeapAlloc: 1 << 30, ForcedGC: true}
	checks := Judge(base, final, DefaultTolerance)
	for _, c := range checks {
		if c.Name == "live heap" {
			t.Fatalf("heap judged without a forced GC at the baseline: %v", c)
		}
	}
	if !Passed(checks) {
		t.Fatalf("failed: %v", checks)
	}
}

func TestPassedNeedsChecks(t *testing.T) {
	if Passed(nil) {
		t.Fatal("no checks passed")
	}
}

func TestReportFailsOnFailedCycles(t *testing.T) {
	r := &Report{Failed: 1, Checks: []Check{{Name: "goroutines", OK: true}}}
	if r.Passed() {
		t.Fatal("a report with a failed cycle passed")
	}
	r.Failed = 0
	if !r.Passed() {
		t.Fatal("a clean report failed")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_alloc_bytes 2.5e+06
go_gc_duration_seconds{quantile="0"} 1e-05
process_resident_memory_bytes 2.1577728e+07
jetsocket_connections 3
jetsocket_connections_total 9
`
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Sample{Goroutines: 42, HeapAlloc: 2_500_000, RSS: 21_577_728, Connections: 3}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines 1\n")); err == nil {
		t.Fatal("missing metrics accepted")
	}
	if _, err := parseMetrics(strings.NewReader(strings.Replace(text, "go_goroutines 42", "go_goroutines x", 1))); err == nil {
		t.Fatal("a value that is not a number accepted")
	}
}

func TestDecodePayload(t *testing.T) {
	got := decodePayload(`2:406:0{"x"}4:42[]`)
	if strings.Join(got, "|") != `40|0{"x"}|42[]` {
		t.Fatalf("got %q", got)
	}
	if got := decodePayload("9:ab"); len(got) != 0 {
		t.Fatalf("a short payload gave %q", got)
	}
}

func TestParseKinds(t *testing.T) {
	if ks, err := ParseKinds("all"); err != nil || len(ks) != len(AllKinds) {
		t.Fatalf("all: %v %v", ks, err)
	}
	if ks, err := ParseKinds("ws, polling"); err != nil || len(ks) != 2 || ks[1] != Polling {
		t.Fatalf("list: %v %v", ks, err)
	}
	if _, err := ParseKinds("ws,carrier-pigeon"); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
