package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/bench/harness"
	"github.com/jetsocket/jetsocket/bench/load"
)

// fanout measures one channel's fan-out over three nodes, clients through nginx (the
// repo's deploy/nginx.conf; triggers through it too, as the application's backends
// would) against clients connected straight to the nodes round-robin (triggers to
// node 0), alternating which goes first each round, with the same nodes throughout.
func (c *clusterRun) fanout(ctx context.Context) error {
	nodes, stop, err := c.startNodes(ctx, 3)
	if err != nil {
		return err
	}
	defer stop()
	var upstreams []string
	for _, p := range nodes {
		upstreams = append(upstreams, p.URL.Host)
	}
	// A proxied socket is two nginx connections; the API and polls a few more.
	nx, err := harness.StartNginx(ctx, c.o.nginxConf, upstreams, harness.NginxOptions{Workers: c.o.nginxWorkers, Connections: 2*c.o.n + 256})
	if err != nil {
		return err
	}
	defer nx.Stop()
	h := load.Handshake{EIO: c.o.eio}
	if err := h.Validate(); err != nil {
		return fmt.Errorf("-eio: %w", err)
	}
	modes := []string{"nginx", "direct"}
	results := map[string][]*load.Result{}
	fmt.Fprintf(c.out, "jetbench cluster fanout: 3 nodes on one redis-server, N=%d (%s clients from %d loopback addresses), %d rounds, nginx %s (worker_processes %d)\n",
		c.o.n, h.Label(), c.o.sources, c.o.rounds, c.o.nginxConf, c.o.nginxWorkers)
	for r := range c.o.rounds {
		order := modes
		if r%2 == 1 {
			order = []string{"direct", "nginx"}
		}
		for _, mode := range order {
			t := load.Target{Name: mode, AppID: c.creds.AppID, Key: c.creds.AppKey, Secret: c.creds.AppSecret, Token: c.mint}
			if mode == "nginx" {
				t.URL = nx.URL
			} else {
				t.URL, t.URLs = nodes[0].URL, urls(nodes)
			}
			cfg := load.Config{
				N: c.o.n, Concurrency: 100, LatencyEvents: c.o.events, BurstEvents: c.o.burst, Settle: time.Second,
				LocalIPs: c.ips, Handshake: h,
			}
			var onNodes string
			cfg.AfterSubscribe = func() { onNodes = c.connectionsPerNode(ctx, nodes) }
			res, err := load.Run(ctx, t, cfg)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w\n%s", r+1, mode, err, nx.Log())
			}
			if res.Lost() != 0 || res.ConnectFailures != 0 || res.Disconnected != 0 || res.TriggerFailures != 0 {
				return fmt.Errorf("round %d, %s: delivered %d of %d, %d connect failures %v, %d disconnected, %d trigger failures %s",
					r+1, mode, res.Delivered, res.Expected, res.ConnectFailures, res.ConnectErrors, res.Disconnected, res.TriggerFailures, res.TriggerFailureText)
			}
			results[mode] = append(results[mode], res)
			fmt.Fprintf(c.out, "  round %d %-6s connections per node %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms, %.0f deliveries/s\n",
				r+1, mode, onNodes, res.LatencyP50, res.LatencyP99, res.LatencyMax, res.DeliveriesPerSec)
			if err := wait(ctx, time.Second); err != nil { // the closed sockets' teardown, off the next run
				return err
			}
		}
	}
	c.fanoutSummary(results)
	return nil
}

// connectionsPerNode is each node's jetsocket_connections, "a/b/c".
func (c *clusterRun) connectionsPerNode(ctx context.Context, nodes []*harness.Process) string {
	var parts []string
	for _, p := range nodes {
		v, err := harness.Metric(ctx, p.URL, "jetsocket_connections")
		if err != nil {
			parts = append(parts, "?")
			continue
		}
		parts = append(parts, fmt.Sprint(int(v)))
	}
	return strings.Join(parts, "/")
}

func (c *clusterRun) fanoutSummary(results map[string][]*load.Result) {
	get := map[string]func(*load.Result) float64{
		"p50 ms":          func(r *load.Result) float64 { return r.LatencyP50 },
		"p99 ms":          func(r *load.Result) float64 { return r.LatencyP99 },
		"deliveries/s":    func(r *load.Result) float64 { return r.DeliveriesPerSec },
		"burst p99 ms":    func(r *load.Result) float64 { return r.BurstLatencyP99 },
		"max (steady) ms": func(r *load.Result) float64 { return r.LatencyMax },
	}
	fmt.Fprintf(c.out, "\nfanout, medians of %d rounds (per-round nginx/direct ratios: their median and range)\n\n", c.o.rounds)
	fmt.Fprintln(c.out, "| measure | direct | nginx | nginx / direct | per-round ratios |")
	fmt.Fprintln(c.out, "|---|---|---|---|---|")
	for _, name := range []string{"p50 ms", "p99 ms", "max (steady) ms", "deliveries/s", "burst p99 ms"} {
		f := get[name]
		var d, n, ratios []float64
		for i := range results["direct"] {
			d = append(d, f(results["direct"][i]))
			n = append(n, f(results["nginx"][i]))
			if dv := f(results["direct"][i]); dv > 0 {
				ratios = append(ratios, f(results["nginx"][i])/dv)
			}
		}
		format := "%.2f"
		if name == "deliveries/s" {
			format = "%.0f"
		}
		fmt.Fprintf(c.out, "| %s | "+format+" | "+format+" | %.2f | median %.2f, %s |\n", name, median(d), median(n), median(n)/median(d), median(ratios), spread(ratios, "%.2f"))
	}
}
