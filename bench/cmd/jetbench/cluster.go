package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/bench/harness"
)

// clusterOpts are jetbench cluster's flags.
type clusterOpts struct {
	bin, nginxConf string
	phases         string
	require        bool
	rounds         int
	sources        int
	// fanout
	n, events, burst, nginxWorkers, eio int
	// channels
	channels, perChannel, publications int
	layouts                            string
}

// clusterCmd measures Jetsocket as a cluster: nodes on one redis-server, with the
// repo's nginx in front (phase fanout) and with the channels spread over them (phase
// channels). Every process it starts it stops, also on an error or ^C.
func clusterCmd(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("cluster", flag.ContinueOnError)
	var o clusterOpts
	fl.StringVar(&o.bin, "jetsocket", ".bin/jetsocket", "the jetsocket binary")
	fl.StringVar(&o.nginxConf, "nginx-conf", "deploy/nginx.conf", "the nginx site configuration, rendered as e2e/deploy.test.mjs renders it")
	fl.BoolVar(&o.require, "require", false, "fail, rather than skip, when redis-server or nginx is missing (CI installs both)")
	fl.StringVar(&o.phases, "phases", "fanout,channels", "which measurements: fanout (nginx against direct), channels (per-node Redis traffic and CPU by layout)")
	fl.IntVar(&o.rounds, "rounds", 5, "interleaved rounds (each measures every mode or layout once, in a rotating order)")
	fl.IntVar(&o.sources, "sources", 1000, "loopback source addresses the clients spread over (nginx hashes on the client address)")
	fl.IntVar(&o.n, "n", 2000, "fanout: connections, all on one channel")
	fl.IntVar(&o.events, "events", 30, "fanout: events sent one at a time (latency)")
	fl.IntVar(&o.burst, "burst", 30, "fanout: events sent back to back (deliveries per second)")
	fl.IntVar(&o.nginxWorkers, "nginx-workers", 1, "fanout: nginx worker_processes (e2e/deploy.test.mjs runs 1)")
	fl.IntVar(&o.eio, "eio", 3, "fanout: client generation, Engine.IO 3 (socket.io-client 2.x) or 4")
	fl.IntVar(&o.channels, "channels", 300, "channels: how many channels")
	fl.IntVar(&o.perChannel, "per-channel", 3, "channels: clients on each channel")
	fl.IntVar(&o.publications, "publications", 30000, "channels: publications measured per layout and round")
	fl.StringVar(&o.layouts, "layouts", "1,3,3-spread", "channels: layouts, N (N nodes, each serving 1/N of the channels) or N-spread (every channel's clients spread over the N nodes: every node serves every channel); ratios are against the first")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if o.rounds < 1 {
		return errors.New("-rounds: at least 1")
	}
	for _, prog := range []string{"redis-server", "nginx"} {
		if _, err := harness.Look(prog); err != nil {
			if o.require {
				return err
			}
			fmt.Fprintf(out, "jetbench cluster: skipped: %v (install redis-server and nginx)\n", err)
			return nil
		}
	}
	phases := strings.Split(o.phases, ",")
	for _, p := range phases {
		if p != "fanout" && p != "channels" {
			return fmt.Errorf("-phases: unknown phase %q (fanout, channels)", p)
		}
	}
	layouts, err := parseLayouts(o.layouts)
	if err != nil {
		return err
	}
	creds := harness.Credentials{JWTSecret: randomHex(32), AppID: "bench", AppKey: "bench-key", AppSecret: randomHex(16)}
	mint, err := tokenMinter(creds.JWTSecret)
	if err != nil {
		return err
	}
	redis, err := harness.StartRedis(ctx)
	if err != nil {
		return err
	}
	defer redis.Stop()
	c := &clusterRun{o: o, creds: creds, mint: mint, redis: redis, out: out, ips: loopbackIPs(o.sources)}
	if slices.Contains(phases, "fanout") {
		if err := c.fanout(ctx); err != nil {
			return fmt.Errorf("fanout: %w", err)
		}
	}
	if slices.Contains(phases, "channels") {
		if err := c.channelLayouts(ctx, layouts); err != nil {
			return fmt.Errorf("channels: %w", err)
		}
	}
	return nil
}

type clusterRun struct {
	o     clusterOpts
	creds harness.Credentials
	mint  func(int) (string, error)
	redis *harness.Redis
	out   io.Writer
	ips   []net.IP
}

func loopbackIPs(n int) []net.IP {
	var ips []net.IP
	for i := 1; i <= n; i++ {
		ips = append(ips, net.IPv4(127, 0, byte(i/250), byte(1+i%250)))
	}
	return ips
}

// startNodes starts k nodes on the run's redis-server, one after the other (each sees
// the others alive). stop stops those that started.
func (c *clusterRun) startNodes(ctx context.Context, k int) (nodes []*harness.Process, stop func(), err error) {
	stop = func() {
		for _, p := range nodes {
			p.Stop()
		}
	}
	for range k {
		p, err := harness.Start(ctx, harness.ClusterNode(c.o.bin, c.redis.URL), c.creds)
		if err != nil {
			stop()
			return nil, nil, err
		}
		nodes = append(nodes, p)
	}
	return nodes, stop, nil
}

func urls(ps []*harness.Process) []*url.URL {
	var us []*url.URL
	for _, p := range ps {
		us = append(us, p.URL)
	}
	return us
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is "min–max" of xs, for the noise.
func spread(xs []float64, format string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(format+"–"+format, slices.Min(xs), slices.Max(xs))
}

// parseLayouts reads -layouts.
func parseLayouts(s string) ([]layout, error) {
	var ls []layout
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		num, isSpread := strings.CutSuffix(f, "-spread")
		k, err := strconv.Atoi(num)
		if err != nil || k < 1 {
			return nil, fmt.Errorf("-layouts: %q is neither N nor N-spread", f)
		}
		ls = append(ls, layout{nodes: k, spread: isSpread})
	}
	return ls, nil
}

type layout struct {
	nodes  int
	spread bool
}

func (l layout) String() string {
	if l.spread {
		return fmt.Sprintf("%d nodes, every channel on every node", l.nodes)
	}
	if l.nodes == 1 {
		return "1 node, every channel"
	}
	return fmt.Sprintf("%d nodes, 1/%d of the channels each", l.nodes, l.nodes)
}

// wait sleeps d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
