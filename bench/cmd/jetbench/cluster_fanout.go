package main

import (
	"context"
	"fmt"
	"net/url"
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
	// A proxied socket is two nginx connections; the API, polls and the keepalive pool
	// more. Ample, so that nginx never reuses (drops) a connection for want of one.
	nx, err := harness.StartNginx(ctx, c.o.nginxConf, upstreams, harness.NginxOptions{Workers: c.o.nginxWorkers, Connections: 4*c.o.n + 1024})
	if err != nil {
		return err
	}
	defer nx.Stop()
	h := load.Handshake{EIO: c.o.eio}
	if err := h.Validate(); err != nil {
		return fmt.Errorf("-eio: %w", err)
	}
	modes := []string{"nginx", "direct", "direct-split"}
	results := map[string][]*load.Result{}
	costs := map[string][][2]float64{} // per run: nodes' and nginx's CPU µs per delivery
	fmt.Fprintf(c.out, "jetbench cluster fanout: 3 nodes on one redis-server, N=%d (%s clients from %d loopback addresses), %d rounds, nginx %s (worker_processes %d)\n",
		c.o.n, h.Label(), c.o.sources, c.o.rounds, c.o.nginxConf, c.o.nginxWorkers)
	fmt.Fprintln(c.out, "  direct: clients spread evenly over the nodes; direct-split: over the nodes as nginx's hash split them (its first run)")
	var split []int // connections per node through nginx, from the first nginx run
	for r := range c.o.rounds {
		for j := range modes {
			mode := modes[(j+r)%len(modes)] // round 1: nginx first, so split is known
			t := load.Target{Name: mode, AppID: c.creds.AppID, Key: c.creds.AppKey, Secret: c.creds.AppSecret, Token: c.mint}
			switch mode {
			case "nginx":
				t.URL = nx.URL
			case "direct":
				t.URL, t.URLs = nodes[0].URL, urls(nodes)
			case "direct-split":
				t.URL, t.URLs = nodes[0].URL, weighted(urls(nodes), split)
			}
			cfg := load.Config{
				N: c.o.n, Concurrency: 100, LatencyEvents: c.o.events, BurstEvents: c.o.burst, Settle: time.Second,
				LocalIPs: c.ips, Handshake: h,
			}
			var onNodes []int
			var cpu0, cpu1 pathCPU
			cfg.AfterSubscribe = func() {
				onNodes = c.connectionsPerNode(ctx, nodes)
				cpu0 = readPathCPU(nodes, nx)
			}
			cfg.BeforeClose = func() { cpu1 = readPathCPU(nodes, nx) }
			res, err := load.Run(ctx, t, cfg)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w\n%s", r+1, mode, err, nx.Log())
			}
			if res.Lost() != 0 || res.ConnectFailures != 0 || res.Disconnected != 0 || res.TriggerFailures != 0 {
				return fmt.Errorf("round %d, %s: delivered %d of %d, %d connect failures %v, %d disconnected, %d trigger failures %s\nnginx: %s",
					r+1, mode, res.Delivered, res.Expected, res.ConnectFailures, res.ConnectErrors, res.Disconnected, res.TriggerFailures, res.TriggerFailureText, nx.Log())
			}
			if mode == "nginx" && split == nil {
				split = onNodes
			}
			results[mode] = append(results[mode], res)
			// CPU per delivery from subscribed to the last delivery (a second idle, then the events).
			per := float64(res.Delivered) / 1e3 // µs per delivery from ms
			nodeUS, nginxUS := ms(cpu1.nodes-cpu0.nodes)/per, ms(cpu1.nginx-cpu0.nginx)/per
			costs[mode] = append(costs[mode], [2]float64{nodeUS, nginxUS})
			fmt.Fprintf(c.out, "  round %d %-12s connections per node %v: p50 %.2f ms, p99 %.2f ms, max %.2f ms, %.0f deliveries/s, burst p99 %.2f ms; CPU per delivery: nodes %.1f µs, nginx %.1f µs\n",
				r+1, mode, onNodes, res.LatencyP50, res.LatencyP99, res.LatencyMax, res.DeliveriesPerSec, res.BurstLatencyP99, nodeUS, nginxUS)
			if err := wait(ctx, time.Second); err != nil { // the closed sockets' teardown, off the next run
				return err
			}
		}
	}
	c.fanoutSummary(results, costs)
	return nil
}

// connectionsPerNode is each node's jetsocket_connections (-1: unreadable).
func (c *clusterRun) connectionsPerNode(ctx context.Context, nodes []*harness.Process) []int {
	var counts []int
	for _, p := range nodes {
		v, err := harness.Metric(ctx, p.URL, "jetsocket_connections")
		if err != nil {
			v = -1
		}
		counts = append(counts, int(v))
	}
	return counts
}

// weighted is us repeated in the proportions of counts, interleaved (smooth weighted
// round-robin), so that connection i to weighted[i%len] splits as counts do; with no
// usable counts, us.
func weighted(us []*url.URL, counts []int) []*url.URL {
	total := 0
	for _, n := range counts {
		if n < 0 {
			return us
		}
		total += n
	}
	if len(counts) != len(us) || total == 0 {
		return us
	}
	out := make([]*url.URL, 0, total)
	credit := make([]int, len(us))
	for range total {
		best := 0
		for j := range us {
			credit[j] += counts[j]
			if credit[j] > credit[best] {
				best = j
			}
		}
		credit[best] -= total
		out = append(out, us[best])
	}
	return out
}

// pathCPU is the CPU the three nodes and nginx have used so far.
type pathCPU struct{ nodes, nginx time.Duration }

// readPathCPU samples it; a process it cannot read counts nothing (the figure is then low,
// and the run's line shows it).
func readPathCPU(nodes []*harness.Process, nx *harness.Nginx) pathCPU {
	var p pathCPU
	for _, n := range nodes {
		d, _ := harness.CPU(n.PID)
		p.nodes += d
	}
	p.nginx, _ = nx.CPU()
	return p
}

func (c *clusterRun) fanoutSummary(results map[string][]*load.Result, costs map[string][][2]float64) {
	get := map[string]func(*load.Result) float64{
		"p50 ms":          func(r *load.Result) float64 { return r.LatencyP50 },
		"p99 ms":          func(r *load.Result) float64 { return r.LatencyP99 },
		"deliveries/s":    func(r *load.Result) float64 { return r.DeliveriesPerSec },
		"burst p99 ms":    func(r *load.Result) float64 { return r.BurstLatencyP99 },
		"max (steady) ms": func(r *load.Result) float64 { return r.LatencyMax },
	}
	fmt.Fprintf(c.out, "\nfanout, medians of %d rounds; ratios: median of the per-round ratios (their range)\n\n", c.o.rounds)
	fmt.Fprintln(c.out, "| measure | direct, even | direct, nginx's split | through nginx | nginx / direct even | nginx / direct split |")
	fmt.Fprintln(c.out, "|---|---|---|---|---|---|")
	for _, name := range []string{"p50 ms", "p99 ms", "max (steady) ms", "deliveries/s", "burst p99 ms"} {
		f := get[name]
		format := "%.2f"
		if name == "deliveries/s" {
			format = "%.0f"
		}
		row := "| " + name + " |"
		vals := map[string][]float64{}
		for _, mode := range []string{"direct", "direct-split", "nginx"} {
			for _, r := range results[mode] {
				vals[mode] = append(vals[mode], f(r))
			}
			row += fmt.Sprintf(" "+format+" |", median(vals[mode]))
		}
		for _, against := range []string{"direct", "direct-split"} {
			var ratios []float64
			for i, v := range vals[against] {
				if v > 0 && i < len(vals["nginx"]) {
					ratios = append(ratios, vals["nginx"][i]/v)
				}
			}
			row += fmt.Sprintf(" %.2f (%s) |", median(ratios), spread(ratios, "%.2f"))
		}
		fmt.Fprintln(c.out, row)
	}
	fmt.Fprintln(c.out, "\nCPU per delivery, µs (medians; range), from subscribed to the last delivery:")
	for _, mode := range []string{"direct", "direct-split", "nginx"} {
		var nodes, nginx, both []float64
		for _, cost := range costs[mode] {
			nodes, nginx, both = append(nodes, cost[0]), append(nginx, cost[1]), append(both, cost[0]+cost[1])
		}
		fmt.Fprintf(c.out, "  %-12s nodes %.1f (%s), nginx %.1f (%s), together %.1f\n", mode, median(nodes), spread(nodes, "%.1f"), median(nginx), spread(nginx, "%.1f"), median(both))
	}
}
