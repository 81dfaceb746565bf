// Command jetbench is Jetsocket's load tool. "compare" starts Jetsocket and the Node
// socket.io 4 reference server in turn, drives both with the same clients of each
// generation asked for (-eio 3,4: socket.io-client 2.x's Engine.IO v3 and 3.x/4.x's v4)
// and writes a report with both sets of figures and their ratios; "run" drives a server
// that is already running; "soak" runs thousands of connect/subscribe/disconnect cycles
// and checks that the server's goroutines and memory return to their baseline. See
// BENCHMARKS.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jetsocket/jetsocket/bench/floor"
	"github.com/jetsocket/jetsocket/bench/harness"
	"github.com/jetsocket/jetsocket/bench/load"
	"github.com/jetsocket/jetsocket/bench/report"
	"github.com/jetsocket/jetsocket/tokens"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "jetbench:", err)
		os.Exit(1)
	}
}

const usage = `usage: jetbench compare [flags]   start the servers in turn and compare them
       jetbench run [flags]       drive a server that is already running
       jetbench floor -addr A     serve the bare fan-out floor (compare starts it itself)
       jetbench soak [flags]      connect/subscribe/disconnect cycles; exits 1 on a leak
       jetbench cluster [flags]   three nodes on redis-server: fan-out through nginx against direct,
                                  and per-node Redis traffic and CPU by channel layout`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "compare":
		return compare(ctx, args[1:], out)
	case "run":
		return runOne(ctx, args[1:], out)
	case "floor":
		return serveFloor(ctx, args[1:])
	case "soak":
		return soakCmd(ctx, args[1:], out)
	case "cluster":
		return clusterCmd(ctx, args[1:], out)
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// shape holds the flags both commands share.
type shape struct {
	ns          string
	concurrency int
	events      int
	burst       int
	settle      time.Duration
	sources     int
	cpuProfile  string
	eios        string
	v4Token     string
}

func (s *shape) register(fl *flag.FlagSet) {
	fl.StringVar(&s.ns, "n", "2000,10000", "comma-separated connection counts")
	fl.IntVar(&s.concurrency, "concurrency", 100, "connects in flight")
	fl.IntVar(&s.events, "events", 30, "events sent one at a time (latency)")
	fl.IntVar(&s.burst, "burst", 30, "events sent back to back (deliveries per second)")
	fl.DurationVar(&s.settle, "settle", 5*time.Second, "idle time before memory is read")
	fl.IntVar(&s.sources, "sources", 16, "loopback source addresses to spread connections over (127.0.0.1..)")
	fl.StringVar(&s.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile here (its cost is part of every latency)")
	fl.StringVar(&s.eios, "eio", "3,4", "comma-separated client kinds: Engine.IO versions 3 (socket.io-client 2.x) and 4 (3.x/4.x), and pusher (pusher-js's protocol 7 on /app/{key}; Jetsocket servers only)")
	fl.StringVar(&s.v4Token, "v4-token", "auth", "where EIO 4 clients put the token: auth (the CONNECT packet) or query")
}

// handshakes turns -eio and -v4-token into the client generations to run.
func (s *shape) handshakes() ([]load.Handshake, error) {
	if s.v4Token != "auth" && s.v4Token != "query" {
		return nil, fmt.Errorf("-v4-token: %q is neither auth nor query", s.v4Token)
	}
	var hs []load.Handshake
	for _, f := range strings.Split(s.eios, ",") {
		if strings.TrimSpace(f) == load.ProtocolPusher {
			hs = append(hs, load.Handshake{Protocol: load.ProtocolPusher})
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-eio: %q is not a version", f)
		}
		h := load.Handshake{EIO: v, AuthToken: v == 4 && s.v4Token == "auth"}
		if err := h.Validate(); err != nil {
			return nil, fmt.Errorf("-eio: %w", err)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// profile starts the load tool's CPU profile when asked; the returned func stops it.
func (s *shape) profile() (stop func(), err error) {
	if s.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(s.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (s *shape) parseNs() ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s.ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-n: %q is not a positive count", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func (s *shape) config(n int, h load.Handshake, out io.Writer) load.Config {
	var ips []net.IP
	for i := 1; i <= s.sources; i++ {
		ips = append(ips, net.IPv4(127, 0, 0, byte(i)))
	}
	return load.Config{
		N: n, Concurrency: s.concurrency, LatencyEvents: s.events, BurstEvents: s.burst,
		Settle: s.settle, LocalIPs: ips, Handshake: h,
		Logf: func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) },
	}
}

// tokenMinter issues a distinct user's token per connection, signed with secret.
func tokenMinter(secret string) (func(int) (string, error), error) {
	m, err := tokens.NewManager(tokens.Config{Secret: []byte(secret), TTL: 2 * time.Hour, Leeway: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return func(i int) (string, error) {
		id := "bench-" + strconv.Itoa(i)
		tok, _, err := m.Issue(tokens.User{ID: id, Name: "Bench " + strconv.Itoa(i)})
		return tok, err
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func compare(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("compare", flag.ContinueOnError)
	var s shape
	s.register(fl)
	bin := fl.String("jetsocket", ".bin/jetsocket", "the jetsocket binary")
	baseline := fl.String("baseline", "", "another jetsocket binary (an older commit, say), run as server \"baseline\" in the same invocation")
	profiles := fl.Bool("profiles", false, "keep the Go servers' heap profiles (baseline and idle) in <out>/profiles")
	memRate := fl.Int("memprofilerate", 0, "with -profiles: the Go servers' runtime.MemProfileRate (1 records every allocation; slower, so for attribution runs, not for rates)")
	nodeDir := fl.String("node", "bench/node", "directory of the Node reference server (npm ci done)")
	servers := fl.String("servers", "jetsocket,node,floor,centrifugo", "which servers to run, in order (floor: the bare fan-out loop, a baseline for latency; centrifugo: the binary in $CENTRIFUGO_BIN, skipped when unset)")
	outDir := fl.String("out", "bench/results", "directory for results.json, report.md and latency.png")
	strict := fl.Bool("strict", false, "exit non-zero when a message is lost or a server fails (the targets never fail the run)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	ns, err := s.parseNs()
	if err != nil {
		return err
	}
	hs, err := s.handshakes()
	if err != nil {
		return err
	}
	stopProfile, err := s.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	creds := harness.Credentials{JWTSecret: randomHex(32), AppID: "bench", AppKey: "bench-key", AppSecret: randomHex(16)}
	mint, err := tokenMinter(creds.JWTSecret)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("floor server: %w", err)
	}
	specs := map[string]harness.Spec{"jetsocket": harness.Jetsocket(*bin), "node": harness.Node(*nodeDir), "floor": harness.Floor(self)}
	if bin := os.Getenv("CENTRIFUGO_BIN"); bin != "" {
		specs["centrifugo"] = harness.Centrifugo(bin)
	}
	if *baseline != "" {
		b := harness.Jetsocket(*baseline)
		b.Name = "baseline"
		specs["baseline"] = b
	}
	if *memRate > 0 {
		for _, name := range []string{"jetsocket", "baseline"} { // Go servers we start with a DebugEnv
			if sp, ok := specs[name]; ok && sp.DebugEnv != nil {
				debugEnv := sp.DebugEnv
				sp.DebugEnv = func(port int) []string {
					return append(debugEnv(port), "GODEBUG=memprofilerate="+strconv.Itoa(*memRate))
				}
				specs[name] = sp
			}
		}
	}
	profileDir := ""
	if *profiles {
		profileDir = filepath.Join(*outDir, "profiles")
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return fmt.Errorf("-profiles: %w", err)
		}
	}
	var order []string
	for _, name := range strings.Split(*servers, ",") {
		name = strings.TrimSpace(name)
		if name == "centrifugo" && specs[name].Command == nil {
			fmt.Fprintln(out, "centrifugo: skipped (CENTRIFUGO_BIN is not set)")
			continue
		}
		if _, ok := specs[name]; !ok {
			return fmt.Errorf("-servers: unknown server %q (jetsocket, node, floor; baseline with -baseline)", name)
		}
		order = append(order, name)
	}

	rep := &report.Run{
		Started: time.Now(), Machine: report.ReadMachine(),
		Settings: report.Settings{Ns: ns, Concurrency: s.concurrency, LatencyEvents: s.events, BurstEvents: s.burst, Settle: s.settle.String()},
	}
	fmt.Fprintf(out, "jetbench compare: N=%v, servers %v, clients %s, on %s (%d cores)\n", ns, order, s.eios, rep.Machine.CPU, rep.Machine.Cores)
	for _, n := range ns {
		for _, name := range order {
			runs := serverRuns(name, hs)
			for _, h := range runs {
				if err := ctx.Err(); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s, %s clients, N=%d\n", name, h.Label(), n)
				cfg := s.config(n, h, out)
				cfg.ProfileDir = profileDir
				res, err := runServer(ctx, specs[name], creds, mint, cfg)
				if res != nil {
					rep.Results = append(rep.Results, res)
				}
				if err != nil {
					fmt.Fprintf(out, "  error: %v\n", err)
					rep.Errors = append(rep.Errors, fmt.Sprintf("%s (%s) N=%d: %v", name, h.Label(), n, err))
				}
			}
		}
	}
	if err := rep.Write(*outDir); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(out, "\nreport: %s/report.md\n", *outDir)
	if slices.Contains(order, "jetsocket") && slices.Contains(order, "node") {
		for _, line := range rep.Targets() {
			fmt.Fprintln(out, "  "+line)
		}
	}
	if *strict {
		if len(rep.Errors) > 0 {
			return fmt.Errorf("%d runs failed: %s", len(rep.Errors), strings.Join(rep.Errors, "; "))
		}
		for _, r := range rep.Results {
			if r.Lost() != 0 || r.Expected == 0 || r.ConnectFailures > 0 || r.Disconnected > 0 {
				return fmt.Errorf("%s (%s) N=%d: delivered %d of %d, %d connect failures, %d disconnected", r.Server, r.Client, r.N, r.Delivered, r.Expected, r.ConnectFailures, r.Disconnected)
			}
		}
	}
	return nil
}

// serverRuns is which of the client kinds hs run against server name: Centrifugo has
// its own protocol, run once per N; only Jetsocket servers speak Pusher's.
func serverRuns(name string, hs []load.Handshake) []load.Handshake {
	if name == "centrifugo" {
		return []load.Handshake{{Protocol: load.ProtocolCentrifugo}}
	}
	jetsocket := name == "jetsocket" || name == "baseline"
	var runs []load.Handshake
	for _, h := range hs {
		if h.Protocol == load.ProtocolPusher && !jetsocket {
			continue
		}
		runs = append(runs, h)
	}
	return runs
}

// runServer starts a fresh server, drives it once and stops it. The server is stopped
// before the clients close, so the TIME_WAITs land on the server's side and do not eat
// the load tool's ephemeral ports.
func runServer(ctx context.Context, spec harness.Spec, creds harness.Credentials, mint func(int) (string, error), cfg load.Config) (*load.Result, error) {
	p, err := harness.Start(ctx, spec, creds)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	time.Sleep(time.Second) // let start-up allocations settle before the baseline
	died := false
	cfg.BeforeClose = func() {
		died = p.Exited()
		p.Stop()
	}
	res, err := load.Run(ctx, load.Target{
		Name: spec.Name, URL: p.URL, AppID: creds.AppID, Key: creds.AppKey, Secret: creds.AppSecret,
		Token: mint, PID: p.PID, DebugURL: p.DebugURL,
	}, cfg)
	if died && err == nil {
		err = fmt.Errorf("%w:\n%s", harness.ErrExited, p.Output())
	}
	return res, err
}

// serveFloor runs the bare fan-out server (package floor) until ctx ends.
func serveFloor(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fl.String("addr", "127.0.0.1:8080", "listen address")
	if err := fl.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	return floor.Serve(ctx, ln)
}

func runOne(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("run", flag.ContinueOnError)
	var s shape
	s.register(fl)
	rawURL := fl.String("url", "http://127.0.0.1:8080", "the server's base URL")
	pid := fl.Int("pid", 0, "the server's process id, to read its memory (optional)")
	appID := fl.String("app-id", os.Getenv("APP_ID"), "HTTP API app id (APP_ID)")
	key := fl.String("key", os.Getenv("APP_KEY"), "HTTP API key (APP_KEY)")
	secret := fl.String("secret", os.Getenv("APP_SECRET"), "HTTP API secret (APP_SECRET)")
	jwtSecret := fl.String("jwt-secret", os.Getenv("JWT_SECRET"), "the server's JWT secret, to mint tokens (JWT_SECRET)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	ns, err := s.parseNs()
	if err != nil {
		return err
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url: %q is not a base URL", *rawURL)
	}
	mint, err := tokenMinter(*jwtSecret)
	if err != nil {
		return fmt.Errorf("-jwt-secret: %w", err)
	}
	hs, err := s.handshakes()
	if err != nil {
		return err
	}
	stopProfile, err := s.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	for _, n := range ns {
		for _, h := range hs {
			res, err := load.Run(ctx, load.Target{Name: u.Host, URL: u, AppID: *appID, Key: *key, Secret: *secret, Token: mint, PID: *pid}, s.config(n, h, out))
			if err != nil {
				return err
			}
			if res.Lost() != 0 {
				return fmt.Errorf("N=%d, %s clients: delivered %d of %d", n, h.Label(), res.Delivered, res.Expected)
			}
		}
	}
	return nil
}
