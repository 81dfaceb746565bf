package report

import (
	"fmt"
	"io"

	"github.com/jetsocket/jetsocket/bench/load"
)

// pusherTable puts each Jetsocket server's Pusher protocol 7 clients (pusher-js's wire on
// /app/{key}) beside its socket.io clients of each generation, when the run had them.
// Issue 23's targets: memory per idle connection within 1.1x of socket.io's, connects
// per second and fan-out p99 at least as good.
func (r *Run) pusherTable(w io.Writer) {
	var rows []string
	for _, n := range r.Settings.Ns {
		for _, server := range []string{"jetsocket", "baseline"} {
			p := r.FindClient(server, load.ProtocolPusher, n)
			if p == nil {
				continue
			}
			for _, gen := range []string{"v2", "v4"} {
				s := r.FindClient(server, gen, n)
				if s == nil {
					continue
				}
				row := func(figure, pv, sv, rat, target string) {
					rows = append(rows, fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %s |", n, server, gen, figure, pv, sv, rat, target))
				}
				row("connects/s", f0(p.ConnectsPerSec), f0(s.ConnectsPerSec), ratio(p.ConnectsPerSec, s.ConnectsPerSec)+" of socket.io", "≥ 1.0x")
				row("memory per idle connection, RSS (KB)", kb(p.BytesPerConn), kb(s.BytesPerConn), ratio(float64(p.BytesPerConn), float64(s.BytesPerConn))+" of socket.io", "≤ 1.1x")
				if p.HeapPerConn != 0 || s.HeapPerConn != 0 {
					ph, sh := p.HeapAllocPerConn+p.StackPerConn, s.HeapAllocPerConn+s.StackPerConn
					row("live heap + stacks per idle connection (KB)", kb(ph), kb(sh), ratio(float64(ph), float64(sh))+" of socket.io", "≤ 1.1x")
					row("goroutines per idle connection", fmt.Sprintf("%.2f", p.GoroutinesPerConn), fmt.Sprintf("%.2f", s.GoroutinesPerConn), "", "")
				}
				row("fan-out latency p50 (ms)", f1(p.LatencyP50), f1(s.LatencyP50), ratio(p.LatencyP50, s.LatencyP50)+" of socket.io", "")
				row("fan-out latency p99 (ms)", f1(p.LatencyP99), f1(s.LatencyP99), ratio(p.LatencyP99, s.LatencyP99)+" of socket.io", "≤ 1.0x")
				row("burst deliveries/s", f0(p.DeliveriesPerSec), f0(s.DeliveriesPerSec), ratio(p.DeliveriesPerSec, s.DeliveriesPerSec)+" of socket.io", "")
				row("delivered / expected", delivered(p), delivered(s), "", "all")
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "Pusher protocol 7 against socket.io on the same server: pusher clients connect to `/app/{key}?protocol=7&client=js&version=8.6.0` with no token, subscribe to the public channel with `pusher:subscribe` and answer `pusher:ping`; the same trigger reaches them as `{event, channel, data: \"<JSON string>\"}`.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | server | socket.io clients | figure | pusher | socket.io | ratio | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}
