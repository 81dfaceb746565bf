package soak

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Target is a running server.
type Target struct {
	URL *url.URL
	// DebugURL, when set, is the server's DEBUG_ADDR (net/http/pprof): each sample then
	// forces a GC first (/debug/pprof/heap?gc=1), so the live heap can be judged too.
	DebugURL *url.URL
	// Token returns a valid JWT for cycle i (a distinct user per cycle).
	Token func(i int) (string, error)
}

// Config is the shape of one soak.
type Config struct {
	Cycles      int
	Warmup      int // cycles run before the baseline, so pools and buffers have grown once
	Concurrency int
	Kinds       []Kind // used in turn
	Channels    int    // presence and public channels the subscribes spread over
	// Settle bounds the wait for the server to return to its baseline after the cycles.
	Settle    time.Duration
	Tolerance Tolerance
	Logf      func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if len(c.Kinds) == 0 {
		c.Kinds = QuickKinds
	}
	if c.Channels <= 0 {
		c.Channels = 16
	}
	if c.Settle <= 0 {
		c.Settle = 60 * time.Second
	}
	if c.Tolerance == (Tolerance{}) {
		c.Tolerance = DefaultTolerance
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// quietPeriod is the least time between the last cycle and the final sample: several
// times the longest timer the server keeps for a closed session (1 s).
const quietPeriod = 5 * time.Second

// Report is the outcome of a soak.
type Report struct {
	Cycles   int
	Failed   int
	Errors   []string // the first few
	ByKind   map[Kind]int
	Duration time.Duration
	Peak     Sample // sampled while cycles ran
	Baseline Sample
	Final    Sample
	Settled  time.Duration // from the last cycle to the final sample
	Checks   []Check
}

// Passed reports whether every cycle worked and every figure returned to its baseline.
func (r *Report) Passed() bool { return r.Failed == 0 && Passed(r.Checks) }

// Run warms up, samples the baseline, runs the cycles, waits for the server to settle,
// and judges. An error means the soak could not run; a leak is a failed Report.
func Run(ctx context.Context, t Target, cfg Config) (*Report, error) {
	cfg.defaults()
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2, IdleConnTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	cy := &cycler{
		base:     t.URL,
		http:     &http.Client{Transport: tr, Timeout: 30 * time.Second},
		ws:       &websocket.Dialer{HandshakeTimeout: 15 * time.Second, NetDialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext},
		token:    t.Token,
		channels: cfg.Channels,
	}
	// Samples go over their own connections, closed each time, so the scrape holds no
	// server goroutine between samples.
	sampler := &sampler{target: t, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}

	rep := &Report{Cycles: cfg.Cycles, ByKind: make(map[Kind]int)}
	if cfg.Warmup > 0 {
		cfg.Logf("warm-up: %d cycles", cfg.Warmup)
		run(ctx, cy, cfg, cfg.Warmup, 1_000_000_000, &Report{ByKind: make(map[Kind]int)}, nil)
	}
	tr.CloseIdleConnections()
	base, err := sampler.settle(ctx, nil, cfg.Settle, cfg.Tolerance)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	rep.Baseline = base
	cfg.Logf("baseline: %d goroutines, RSS %.1f MB, heap %.1f MB", base.Goroutines, mb(base.RSS), mb(base.HeapAlloc))

	start := time.Now()
	run(ctx, cy, cfg, cfg.Cycles, 0, rep, sampler)
	rep.Duration = time.Since(start)
	cfg.Logf("%d cycles in %s (%.0f/s), %d failed; peak %d goroutines, RSS %.1f MB",
		rep.Cycles, rep.Duration.Round(time.Millisecond), float64(rep.Cycles)/rep.Duration.Seconds(), rep.Failed, rep.Peak.Goroutines, mb(rep.Peak.RSS))
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	tr.CloseIdleConnections()
	settleStart := time.Now()
	// Closed sessions may be held a moment by the server's own timers (the polling conn
	// of an upgraded session lives on for a second, upgradeGrace): judge only after them.
	select {
	case <-time.After(quietPeriod):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	final, err := sampler.settle(ctx, &base, cfg.Settle, cfg.Tolerance)
	if err != nil {
		return nil, fmt.Errorf("final sample: %w", err)
	}
	rep.Final, rep.Settled = final, time.Since(settleStart)
	rep.Checks = Judge(base, final, cfg.Tolerance)
	return rep, nil
}

// run runs n cycles, numbered from first, into rep; s, when set, records the peak.
func run(ctx context.Context, cy *cycler, cfg Config, n, first int, rep *Report, s *sampler) {
	var next atomic.Int64
	var mu sync.Mutex
	stopPeak := make(chan struct{})
	var peakDone sync.WaitGroup
	if s != nil {
		peakDone.Add(1)
		go func() {
			defer peakDone.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				if smp, err := s.sample(ctx, false); err == nil {
					mu.Lock()
					rep.Peak.Goroutines = max(rep.Peak.Goroutines, smp.Goroutines)
					rep.Peak.RSS = max(rep.Peak.RSS, smp.RSS)
					rep.Peak.Connections = max(rep.Peak.Connections, smp.Connections)
					mu.Unlock()
				}
				select {
				case <-stopPeak:
					return
				case <-tick.C:
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range min(cfg.Concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				k := cfg.Kinds[i%len(cfg.Kinds)]
				err := cy.run(ctx, k, first+i)
				mu.Lock()
				rep.ByKind[k]++
				if err != nil {
					rep.Failed++
					if len(rep.Errors) < 5 {
						rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", k, err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stopPeak)
	peakDone.Wait()
}

type sampler struct {
	target Target
	client *http.Client
}

// sample reads /metrics, after a forced GC when gc is set and a debug address is known.
func (s *sampler) sample(ctx context.Context, gc bool) (Sample, error) {
	forced := false
	if gc && s.target.DebugURL != nil {
		u := *s.target.DebugURL
		u.Path, u.RawQuery = "/debug/pprof/heap", "gc=1"
		// Twice: sync.Pool contents survive one GC (in the victim cache), and pools of
		// per-connection buffers are sized by the last burst, not by any leak.
		for range 2 {
			if err := s.fetch(ctx, u.String(), discard); err != nil {
				return Sample{}, fmt.Errorf("forced GC: %w", err)
			}
		}
		forced = true
	}
	u := *s.target.URL
	u.Path, u.RawQuery = "/metrics", ""
	var smp Sample
	err := s.fetch(ctx, u.String(), func(r io.Reader) (err error) {
		smp, err = parseMetrics(r)
		return err
	})
	if err != nil {
		return Sample{}, err
	}
	smp.ForcedGC = forced
	return smp, nil
}

// settle samples until the server has no connections and its goroutines are steady (no
// reference) or within tolerance of ref and its RSS too, or until timeout: then the last
// sample is returned and the judge decides.
func (s *sampler) settle(ctx context.Context, ref *Sample, timeout time.Duration, tol Tolerance) (Sample, error) {
	deadline := time.Now().Add(timeout)
	var last Sample
	steady := 0
	for {
		smp, err := s.sample(ctx, true)
		if err != nil {
			return Sample{}, err
		}
		if ref == nil {
			if smp.Connections == 0 && smp.Goroutines == last.Goroutines {
				steady++
			} else {
				steady = 0
			}
			if steady >= 3 {
				return smp, nil
			}
		} else if Passed(Judge(*ref, smp, tol)) {
			return smp, nil
		}
		last = smp
		if time.Now().After(deadline) {
			return smp, nil
		}
		select {
		case <-ctx.Done():
			return Sample{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *sampler) fetch(ctx context.Context, u string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return read(resp.Body)
}

func discard(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
