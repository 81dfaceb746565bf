package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jetsocket/jetsocket/bench/harness"
	"github.com/jetsocket/jetsocket/bench/load"
)

// layoutRun is what one layout measured in one round, per 1,000 publications.
type layoutRun struct {
	received  []float64 // per serving node: publications received from Redis
	cpu       []float64 // per serving node: CPU ms
	inKB      []float64 // per serving node: KB read (rchar), about its inbound Redis traffic
	egressKB  float64   // redis-server total_net_output_bytes
	redisCPU  float64   // redis-server CPU ms
	publisher float64   // the publishing node's CPU ms (it serves no client)
	wall      time.Duration
}

// channelLayouts measures each layout once per round, in an order rotated each round:
// a publishing node without clients triggers the publications through its HTTP API;
// the serving nodes hold the clients.
func (c *clusterRun) channelLayouts(ctx context.Context, layouts []layout) error {
	fmt.Fprintf(c.out, "jetbench cluster channels: %d channels, %d clients each, %d publications per layout and round, %d rounds; a separate node publishes\n",
		c.o.channels, c.o.perChannel, c.o.publications, c.o.rounds)
	runs := make([][]layoutRun, len(layouts))
	for r := range c.o.rounds {
		for j := range layouts {
			i := (j + r) % len(layouts)
			lr, err := c.measureLayout(ctx, layouts[i])
			if err != nil {
				return fmt.Errorf("round %d, %v: %w", r+1, layouts[i], err)
			}
			runs[i] = append(runs[i], lr)
			fmt.Fprintf(c.out, "  round %d %-40s per node: received %v, read KB %v, CPU ms %v; redis egress %.0f KB, redis CPU %.0f ms, publisher CPU %.0f ms; %v\n",
				r+1, layouts[i].String()+":", rounded(lr.received), rounded(lr.inKB), rounded(lr.cpu), lr.egressKB, lr.redisCPU, lr.publisher, lr.wall.Round(time.Millisecond))
		}
	}
	c.layoutSummary(layouts, runs)
	return nil
}

func rounded(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}

// measureLayout starts a publisher and l.nodes serving nodes, connects the fleet, warms
// every channel's subscription with one round of publications, then measures.
func (c *clusterRun) measureLayout(ctx context.Context, l layout) (layoutRun, error) {
	all, stop, err := c.startNodes(ctx, l.nodes+1)
	if err != nil {
		return layoutRun{}, err
	}
	defer stop()
	pub, nodes := all[0], all[1:]
	fleet, err := load.ConnectChannels(ctx, load.Target{URL: pub.URL, AppID: c.creds.AppID, Key: c.creds.AppKey, Secret: c.creds.AppSecret, Token: c.mint},
		load.ChannelsConfig{Nodes: urls(nodes), Channels: c.o.channels, PerChannel: c.o.perChannel, Spread: l.spread, LocalIPs: c.ips})
	if err != nil {
		return layoutRun{}, err
	}
	defer fleet.Close()
	per := int64(c.o.perChannel)
	if err := fleet.Publish(ctx, c.o.channels); err != nil { // warm-up: every subscription is live
		return layoutRun{}, err
	}
	if err := fleet.WaitDelivered(ctx, int64(c.o.channels)*per, 30*time.Second); err != nil {
		return layoutRun{}, fmt.Errorf("warm-up: %w", err)
	}
	before, err := c.sample(ctx, pub, nodes)
	if err != nil {
		return layoutRun{}, err
	}
	start := time.Now()
	if err := fleet.Publish(ctx, c.o.publications); err != nil {
		return layoutRun{}, err
	}
	if err := fleet.WaitDelivered(ctx, int64(c.o.channels+c.o.publications)*per, 120*time.Second); err != nil {
		return layoutRun{}, err
	}
	wall := time.Since(start)
	after, err := c.sample(ctx, pub, nodes)
	if err != nil {
		return layoutRun{}, err
	}
	k := 1000 / float64(c.o.publications)
	lr := layoutRun{
		egressKB:  float64(after.egress-before.egress) / 1024 * k,
		redisCPU:  ms(after.redisCPU-before.redisCPU) * k,
		publisher: ms(after.pubCPU-before.pubCPU) * k,
		wall:      wall,
	}
	for i := range nodes {
		lr.received = append(lr.received, (after.received[i]-before.received[i])*k)
		lr.cpu = append(lr.cpu, ms(after.cpu[i]-before.cpu[i])*k)
		lr.inKB = append(lr.inKB, float64(after.read[i]-before.read[i])/1024*k)
	}
	return lr, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type clusterSample struct {
	egress           int64
	redisCPU, pubCPU time.Duration
	cpu              []time.Duration
	read             []int64
	received         []float64
}

// sample reads redis-server's egress and CPU, and each node's CPU and
// jetsocket_cluster_received_total (its /metrics, read before its CPU so the read is
// outside the measured span at both ends alike).
func (c *clusterRun) sample(ctx context.Context, pub *harness.Process, nodes []*harness.Process) (clusterSample, error) {
	var s clusterSample
	for _, p := range nodes {
		v, err := harness.Metric(ctx, p.URL, "jetsocket_cluster_received_total")
		if err != nil {
			return s, err
		}
		s.received = append(s.received, v)
	}
	var err error
	for _, p := range nodes {
		cpu, err := harness.CPU(p.PID)
		if err != nil {
			return s, err
		}
		s.cpu = append(s.cpu, cpu)
		read, err := harness.ReadBytes(p.PID)
		if err != nil {
			return s, err
		}
		s.read = append(s.read, read)
	}
	if s.pubCPU, err = harness.CPU(pub.PID); err != nil {
		return s, err
	}
	if s.redisCPU, err = harness.CPU(c.redis.PID); err != nil {
		return s, err
	}
	s.egress, err = c.redis.Egress(ctx)
	return s, err
}

func (c *clusterRun) layoutSummary(layouts []layout, runs [][]layoutRun) {
	type fig struct {
		name   string
		format string
		get    func(layoutRun) []float64
	}
	one := func(f func(layoutRun) float64) func(layoutRun) []float64 {
		return func(lr layoutRun) []float64 { return []float64{f(lr)} }
	}
	figs := []fig{
		{"publications each serving node receives from Redis (median over nodes and rounds; range)", "%.0f", func(lr layoutRun) []float64 { return lr.received }},
		{"KB each serving node reads (rchar: its inbound Redis traffic and its clients' pings; median over nodes and rounds; range)", "%.1f", func(lr layoutRun) []float64 { return lr.inKB }},
		{"CPU per serving node, ms (median over nodes and rounds; range)", "%.1f", func(lr layoutRun) []float64 { return lr.cpu }},
		{"CPU of all serving nodes together, ms", "%.1f", one(func(lr layoutRun) float64 {
			var t float64
			for _, x := range lr.cpu {
				t += x
			}
			return t
		})},
		{"Redis egress, KB", "%.0f", one(func(lr layoutRun) float64 { return lr.egressKB })},
		{"redis-server CPU, ms", "%.1f", one(func(lr layoutRun) float64 { return lr.redisCPU })},
		{"publishing node CPU, ms", "%.1f", one(func(lr layoutRun) float64 { return lr.publisher })},
	}
	fmt.Fprintf(c.out, "\nchannels, per 1,000 publications, medians of %d rounds (range: min–max of the single values); ratio: median / the first layout's median\n\n", c.o.rounds)
	head, rule := "| measure |", "|---|"
	for i, l := range layouts {
		head += " " + l.String() + " |"
		rule += "---|"
		if i > 0 {
			head += fmt.Sprintf(" ratio to %s |", layouts[0].String())
			rule += "---|"
		}
	}
	fmt.Fprintln(c.out, head)
	fmt.Fprintln(c.out, rule)
	for _, f := range figs {
		row := "| " + f.name + " |"
		var base float64
		for i := range layouts {
			var xs []float64
			for _, lr := range runs[i] {
				xs = append(xs, f.get(lr)...)
			}
			m := median(xs)
			row += fmt.Sprintf(" "+f.format+" (%s) |", m, spread(xs, f.format))
			if i == 0 {
				base = m
			} else if base > 0 {
				row += fmt.Sprintf(" %.2f |", m/base)
			} else {
				row += " - |"
			}
		}
		fmt.Fprintln(c.out, row)
	}
}
