package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetsocket/jetsocket/server/apisig"
)

// Target is a running server to drive.
type Target struct {
	Name string
	// URL is where triggers go, and where clients connect unless URLs is set.
	URL *url.URL
	// URLs, when set, are the addresses clients connect to, connection i to
	// URLs[i%len(URLs)] (the nodes of a cluster, without a balancer in front).
	URLs   []*url.URL
	AppID  string
	Key    string
	Secret string
	// Token returns the JWT for connection i (distinct users, as in real traffic).
	Token func(i int) (string, error)
	// PID, when set, is the server process whose resident memory is measured.
	PID int
	// DebugURL, when set, is a Go server's net/http/pprof address (Jetsocket's
	// DEBUG_ADDR): the live heap, stacks and goroutines are then measured too, after a
	// forced GC, at the baseline and when idle.
	DebugURL *url.URL
}

// connectURL is where connection i connects.
func (t Target) connectURL(i int) *url.URL {
	if len(t.URLs) > 0 {
		return t.URLs[i%len(t.URLs)]
	}
	return t.URL
}

// Config sets the shape of one run.
type Config struct {
	N             int           // connections, all subscribed to Channel
	Concurrency   int           // connects (and subscribes) in flight
	Channel       string        // the channel every connection subscribes to
	Event         string        // the event name triggered
	LatencyEvents int           // events sent one at a time, each once the previous was delivered
	BurstEvents   int           // events sent back to back, for deliveries per second
	Gap           time.Duration // pause between latency events
	Settle        time.Duration // idle time before memory is read
	EventTimeout  time.Duration // how long one event may take to reach everyone
	LocalIPs      []net.IP      // source addresses to spread connections over
	Handshake     Handshake     // client generation and where the token goes; zero: EIO 3, query
	// ProfileDir, when set with Target.DebugURL, receives the heap profiles taken at the
	// baseline and when idle (<server>-<client>-n<N>-{base,idle}.heap.pb.gz).
	ProfileDir string
	// BeforeClose, when set, runs before the clients disconnect (a harness stops the
	// server there, so the TIME_WAITs land on its side).
	BeforeClose func()
	// AfterSubscribe, when set, runs once every connection has subscribed (a harness
	// reads how a balancer spread them).
	AfterSubscribe func()
	Logf           func(format string, args ...any)
}

// Defaults fills in what c leaves zero.
func (c *Config) Defaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 100
	}
	if c.Channel == "" {
		c.Channel = "bench"
	}
	if c.Event == "" {
		c.Event = "tick"
	}
	if c.Gap == 0 {
		c.Gap = 50 * time.Millisecond
	}
	if c.EventTimeout == 0 {
		c.EventTimeout = 20 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Handshake.EIO == 0 {
		c.Handshake.EIO = 3
	}
}

// Result is what one run measured. Durations are in milliseconds.
type Result struct {
	Server string `json:"server"`
	Client string `json:"client"` // Handshake.Label: v2, v4, v4+auth, pusher or centrifugo
	N      int    `json:"n"`

	Connected       int      `json:"connected"`
	ConnectFailures int      `json:"connect_failures"`
	ConnectErrors   []string `json:"connect_errors,omitempty"`
	ConnectSeconds  float64  `json:"connect_seconds"`
	ConnectsPerSec  float64  `json:"connects_per_sec"`
	ConnectP50      float64  `json:"connect_p50_ms"`
	ConnectP99      float64  `json:"connect_p99_ms"`

	Subscribed   int   `json:"subscribed"`
	RSSBaseline  int64 `json:"rss_baseline_bytes"`
	RSSIdle      int64 `json:"rss_idle_bytes"`
	BytesPerConn int64 `json:"bytes_per_idle_conn"`
	// With Target.DebugURL, after a forced GC: what each idle connection adds to the
	// heap in use and to goroutine stacks, and goroutines per connection.
	HeapBaseline      int64   `json:"heap_inuse_baseline_bytes,omitempty"`
	HeapIdle          int64   `json:"heap_inuse_idle_bytes,omitempty"`
	HeapPerConn       int64   `json:"heap_inuse_per_idle_conn,omitempty"`
	HeapAllocPerConn  int64   `json:"heap_alloc_per_idle_conn,omitempty"`
	StackPerConn      int64   `json:"stack_per_idle_conn,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_idle_conn,omitempty"`
	LatencyEvents     int     `json:"latency_events"`
	BurstEvents       int     `json:"burst_events"`

	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	LatencyMax float64 `json:"latency_max_ms"`

	BurstSeconds       float64 `json:"burst_seconds"`
	DeliveriesPerSec   float64 `json:"deliveries_per_sec"`
	BurstLatencyP99    float64 `json:"burst_latency_p99_ms"`
	Expected           int64   `json:"expected_deliveries"`
	Delivered          int64   `json:"delivered"`
	Duplicates         int64   `json:"duplicates"`
	Disconnected       int     `json:"disconnected_during_run"`
	TriggerFailures    int     `json:"trigger_failures"`
	TriggerFailureText string  `json:"trigger_failure,omitempty"`
}

// profilePath is where a heap profile of phase goes, or "" when none is kept.
func (c *Config) profilePath(server, phase string) string {
	if c.ProfileDir == "" {
		return ""
	}
	return filepath.Join(c.ProfileDir, fmt.Sprintf("%s-%s-n%d-%s.heap.pb.gz", server, c.Handshake.Label(), c.N, phase))
}

// Lost is how many expected deliveries never arrived.
func (r *Result) Lost() int64 { return r.Expected - r.Delivered }

// Run connects cfg.N clients to t, subscribes them, measures memory, then triggers
// events and measures their delivery. Connections that fail count as failures in the
// result; Run itself fails only when nothing can be measured.
func Run(ctx context.Context, t Target, cfg Config) (*Result, error) {
	cfg.Defaults()
	if err := cfg.Handshake.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Server: t.Name, Client: cfg.Handshake.Label(), N: cfg.N, LatencyEvents: cfg.LatencyEvents, BurstEvents: cfg.BurstEvents}
	totalEvents := cfg.LatencyEvents + cfg.BurstEvents

	tokens := make([]string, cfg.N)
	for i := range tokens {
		tok, err := t.Token(i)
		if err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		tokens[i] = tok
	}
	res.RSSBaseline = rss(t.PID)
	var goBase goSample
	if t.DebugURL != nil {
		var err error
		if goBase, err = sampleGo(ctx, t.DebugURL, cfg.profilePath(t.Name, "base")); err != nil {
			return nil, fmt.Errorf("%s: baseline heap: %w", t.Name, err)
		}
	}

	// Deliveries: lat[seq][i] is connection i's latency for event seq (0: not received).
	lat := make([][]atomic.Int64, totalEvents)
	for k := range lat {
		lat[k] = make([]atomic.Int64, cfg.N)
	}
	counts := make([]atomic.Int64, totalEvents)
	done := make([]chan struct{}, totalEvents)
	for k := range done {
		done[k] = make(chan struct{})
	}
	var target atomic.Int64 // connections expected to get each event
	var lastRecv atomic.Int64
	var dups atomic.Int64

	// Connect.
	d := dialer(cfg.LocalIPs)
	clients := make([]*client, cfg.N)
	connDur := make([]time.Duration, cfg.N)
	var failMu sync.Mutex
	connectStart := time.Now()
	parallel(cfg.N, cfg.Concurrency, func(i int) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		start := time.Now()
		c, err := connect(cctx, d, t.connectURL(i), t.Key, tokens[i], cfg.Handshake)
		if err != nil {
			failMu.Lock()
			res.ConnectFailures++
			if len(res.ConnectErrors) < 5 {
				res.ConnectErrors = append(res.ConnectErrors, err.Error())
			}
			failMu.Unlock()
			return
		}
		connDur[i] = time.Since(start)
		idx := i
		c.start(cfg.Event, func(seq int, sent, recv int64) {
			if seq < 0 || seq >= totalEvents {
				return
			}
			if !lat[seq][idx].CompareAndSwap(0, max(recv-sent, 1)) {
				dups.Add(1)
				return
			}
			for {
				old := lastRecv.Load()
				if recv <= old || lastRecv.CompareAndSwap(old, recv) {
					break
				}
			}
			if counts[seq].Add(1) == target.Load() {
				close(done[seq])
			}
		})
		clients[i] = c
	})
	res.ConnectSeconds = time.Since(connectStart).Seconds()
	var live []*client
	var durs []time.Duration
	for i, c := range clients {
		if c != nil {
			live = append(live, c)
			durs = append(durs, connDur[i])
		}
	}
	res.Connected = len(live)
	res.ConnectsPerSec = float64(res.Connected) / res.ConnectSeconds
	res.ConnectP50, res.ConnectP99 = durPercentile(durs, 50), durPercentile(durs, 99)
	cfg.Logf("%s N=%d: %d connected in %.2fs (%.0f/s), %d failed", t.Name, cfg.N, res.Connected, res.ConnectSeconds, res.ConnectsPerSec, res.ConnectFailures)
	defer func() {
		if cfg.BeforeClose != nil {
			cfg.BeforeClose()
		}
		for _, c := range live {
			c.close()
		}
	}()
	if len(live) == 0 {
		return res, fmt.Errorf("%s: no connection succeeded: %v", t.Name, res.ConnectErrors)
	}

	if cfg.Handshake.EIO == 3 && cfg.Handshake.Protocol == "" { // v4 and Centrifugo clients answer the server's pings in their read loops
		pingCtx, stopPings := context.WithCancel(ctx)
		defer stopPings()
		go keepAlive(pingCtx, live)
	}

	// Subscribe, with an ack.
	var subscribed atomic.Int64
	var subErr atomic.Value
	parallel(len(live), cfg.Concurrency, func(i int) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if cfg.Handshake.Protocol == ProtocolCentrifugo {
			if err := live[i].subscribeCentrifugo(sctx, cfg.Channel); err != nil {
				subErr.Store(err.Error())
				return
			}
			subscribed.Add(1)
			return
		}
		if cfg.Handshake.Protocol == ProtocolPusher {
			if err := live[i].subscribePusher(sctx, cfg.Channel); err != nil {
				subErr.Store(err.Error())
				return
			}
			subscribed.Add(1)
			return
		}
		ack, err := live[i].emitAck(sctx, "jetsocket:subscribe", map[string]string{"channel": cfg.Channel})
		if err != nil {
			subErr.Store(err.Error())
			return
		}
		var a struct {
			OK bool `json:"ok"`
		}
		if json.Unmarshal(ack, &a) != nil || !a.OK {
			subErr.Store("subscribe refused: " + string(ack))
			return
		}
		subscribed.Add(1)
	})
	res.Subscribed = int(subscribed.Load())
	if res.Subscribed != len(live) {
		return res, fmt.Errorf("%s: %d of %d subscribed: %v", t.Name, res.Subscribed, len(live), subErr.Load())
	}
	target.Store(int64(res.Subscribed))
	if cfg.AfterSubscribe != nil {
		cfg.AfterSubscribe()
	}

	// Idle memory.
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.RSSIdle = rss(t.PID)
	if res.RSSBaseline > 0 && res.RSSIdle > 0 {
		res.BytesPerConn = (res.RSSIdle - res.RSSBaseline) / int64(len(live))
	}
	cfg.Logf("%s N=%d: RSS %d MB -> %d MB, %d B per idle connection", t.Name, cfg.N, res.RSSBaseline>>20, res.RSSIdle>>20, res.BytesPerConn)
	if t.DebugURL != nil {
		idle, err := sampleGo(ctx, t.DebugURL, cfg.profilePath(t.Name, "idle"))
		if err != nil {
			return res, fmt.Errorf("%s: idle heap: %w", t.Name, err)
		}
		n := int64(len(live))
		res.HeapBaseline, res.HeapIdle = goBase.HeapInuse, idle.HeapInuse
		res.HeapPerConn = (idle.HeapInuse - goBase.HeapInuse) / n
		res.HeapAllocPerConn = (idle.HeapAlloc - goBase.HeapAlloc) / n
		res.StackPerConn = (idle.StackInuse - goBase.StackInuse) / n
		res.GoroutinesPerConn = float64(idle.Goroutines-goBase.Goroutines) / float64(n)
		cfg.Logf("%s N=%d: after GC, heap in use %d B (live objects %d B), stacks %d B, %.2f goroutines per idle connection",
			t.Name, cfg.N, res.HeapPerConn, res.HeapAllocPerConn, res.StackPerConn, res.GoroutinesPerConn)
	}

	tr := &trigger{t: t, client: &http.Client{Timeout: 30 * time.Second}, channel: cfg.Channel, event: cfg.Event, centrifugo: cfg.Handshake.Protocol == ProtocolCentrifugo}
	failTrigger := func(err error) {
		res.TriggerFailures++
		res.TriggerFailureText = err.Error()
	}

	// Latency: one event at a time.
	for k := 0; k < cfg.LatencyEvents; k++ {
		if err := tr.send(ctx, k); err != nil {
			failTrigger(err)
			continue
		}
		waitDone(ctx, done[k], cfg.EventTimeout)
		time.Sleep(cfg.Gap)
	}
	// Throughput: a burst.
	burstStart := time.Now()
	lastRecv.Store(0)
	for k := cfg.LatencyEvents; k < totalEvents; k++ {
		if err := tr.send(ctx, k); err != nil {
			failTrigger(err)
		}
	}
	for k := cfg.LatencyEvents; k < totalEvents; k++ {
		waitDone(ctx, done[k], cfg.EventTimeout)
	}
	if last := lastRecv.Load(); last > 0 && cfg.BurstEvents > 0 {
		res.BurstSeconds = time.Duration(last - burstStart.UnixNano()).Seconds()
	}

	// Tally.
	var steady, burst []int64
	for k := range lat {
		for i := range lat[k] {
			l := lat[k][i].Load()
			if l == 0 {
				continue
			}
			res.Delivered++
			if k < cfg.LatencyEvents {
				steady = append(steady, l)
			} else {
				burst = append(burst, l)
			}
		}
	}
	res.Expected = int64(res.Subscribed) * int64(totalEvents)
	res.Duplicates = dups.Load()
	res.LatencyP50, res.LatencyP99, res.LatencyMax = percentile(steady, 50), percentile(steady, 99), percentile(steady, 100)
	res.BurstLatencyP99 = percentile(burst, 99)
	if res.BurstSeconds > 0 {
		res.DeliveriesPerSec = float64(len(burst)) / res.BurstSeconds
	}
	for _, c := range live {
		select {
		case <-c.readDone:
			res.Disconnected++
		default:
		}
	}
	cfg.Logf("%s N=%d: latency p50 %.1f ms p99 %.1f ms max %.1f ms; burst %.0f deliveries/s; delivered %d/%d",
		t.Name, cfg.N, res.LatencyP50, res.LatencyP99, res.LatencyMax, res.DeliveriesPerSec, res.Delivered, res.Expected)
	return res, nil
}

func waitDone(ctx context.Context, ch <-chan struct{}, timeout time.Duration) {
	select {
	case <-ch:
	case <-time.After(timeout):
	case <-ctx.Done():
	}
}

// keepAlive pings every client once per ping interval, spread over the interval so the
// servers see a steady trickle rather than a wave.
func keepAlive(ctx context.Context, cs []*client) {
	interval := cs[0].pingInterval
	if interval <= 0 {
		interval = 25 * time.Second
	}
	const tick = 250 * time.Millisecond
	slots := max(int(interval/tick)-1, 1) // a little early is fine, late is not
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := n % slots; i < len(cs); i += slots {
			_ = cs[i].ping()
		}
	}
}

// trigger publishes events through the Pusher-signed HTTP API.
type trigger struct {
	t          Target
	client     *http.Client
	channel    string
	event      string
	centrifugo bool // publish through Centrifugo's server API instead of Pusher's
}

func (tr *trigger) send(ctx context.Context, seq int) error {
	if tr.centrifugo {
		return tr.publishCentrifugo(ctx, seq)
	}
	data := `{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"seq":` + strconv.Itoa(seq) + `}`
	body, err := json.Marshal(map[string]string{"name": tr.event, "channel": tr.channel, "data": data})
	if err != nil {
		return err
	}
	path := "/apps/" + tr.t.AppID + "/events"
	q := url.Values{}
	apisig.SignQuery(http.MethodPost, path, q, body, tr.t.Key, tr.t.Secret, time.Now())
	u := *tr.t.URL
	u.Path, u.RawQuery = path, q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.client.Do(req)
	if err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("trigger: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// parallel runs f(0..n-1) with at most width calls at once.
func parallel(n, width int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// percentile of nanosecond samples, in milliseconds (nearest rank; 100 is the max).
func percentile(ns []int64, p float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / 1e6
}

func durPercentile(ds []time.Duration, p float64) float64 {
	ns := make([]int64, len(ds))
	for i, d := range ds {
		ns[i] = int64(d)
	}
	return percentile(ns, p)
}

// rss is the resident set size of process pid in bytes (0 when unknown).
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
