// Package report writes a comparison run as JSON, Markdown and a latency plot.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/bench/load"
)

// Run is one invocation of the comparison.
type Run struct {
	Started  time.Time      `json:"started"`
	Machine  Machine        `json:"machine"`
	Settings Settings       `json:"settings"`
	Results  []*load.Result `json:"results"`
	Errors   []string       `json:"errors,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Ns            []int  `json:"ns"`
	Concurrency   int    `json:"concurrency"`
	LatencyEvents int    `json:"latency_events"`
	BurstEvents   int    `json:"burst_events"`
	Settle        string `json:"settle"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Node   string `json:"node"`
}

// ReadMachine collects what it can; missing facts stay empty.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		m.Node = strings.TrimSpace(string(out))
	}
	return m
}

// Find returns the result for server at n with socket.io-client 2.x (v2) clients, or nil.
func (r *Run) Find(server string, n int) *load.Result { return r.FindClient(server, "v2", n) }

// FindClient returns the result for server at n with the client generation client (a
// load.Handshake label: v2, v4, v4+auth; v4 matches either v4 label), or nil. Results
// from before the v4 client have no label and count as v2.
func (r *Run) FindClient(server, client string, n int) *load.Result {
	for _, x := range r.Results {
		c := x.Client
		if c == "" {
			c = "v2"
		}
		if client == "v4" && strings.HasPrefix(c, "v4") {
			c = "v4"
		}
		if x.Server == server && x.N == n && c == client {
			return x
		}
	}
	return nil
}

// Write puts results.json, report.md and latency.png into dir.
func (r *Run) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	r.Markdown(f)
	if err := f.Close(); err != nil {
		return err
	}
	return r.Plot(filepath.Join(dir, "latency.png"))
}

// Markdown writes the figures of both servers side by side, with ratios.
func (r *Run) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# Jetsocket vs Node socket.io 4: %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	m := r.Machine
	fmt.Fprintf(w, "Machine: %s, %d cores, Linux %s; %s, Node %s. Load tool and server share the machine.\n\n", m.CPU, m.Cores, m.Kernel, m.Go, m.Node)
	s := r.Settings
	fmt.Fprintf(w, "Each N: a fresh server; N websocket connections (Engine.IO v3 as socket.io-client 2.x speaks it, unless a table says v4; a distinct JWT each, %d connects in flight), each subscribed with an ack to one channel; %s idle, then resident memory; %d events triggered one at a time through the signed HTTP API (latency), then %d back to back (deliveries per second).\n\n",
		s.Concurrency, s.Settle, s.LatencyEvents, s.BurstEvents)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "**Error:** %s\n\n", e)
	}
	fmt.Fprintln(w, "| N | figure | jetsocket | node | ratio | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, n := range s.Ns {
		j, nd := r.Find("jetsocket", n), r.Find("node", n)
		if j == nil || nd == nil {
			continue
		}
		row := func(name, jv, nv, ratio, target string) {
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", n, name, jv, nv, ratio, target)
		}
		row("connects/s", f0(j.ConnectsPerSec), f0(nd.ConnectsPerSec), ratio(j.ConnectsPerSec, nd.ConnectsPerSec)+" faster", "≥ 3x")
		row("connect p99 (ms)", f1(j.ConnectP99), f1(nd.ConnectP99), ratio(nd.ConnectP99, j.ConnectP99)+" lower", "")
		row("memory per idle connection (KB)", kb(j.BytesPerConn), kb(nd.BytesPerConn), ratio(float64(j.BytesPerConn), float64(nd.BytesPerConn))+" of node", "≤ 1.0x")
		row("fan-out latency p50 (ms)", f1(j.LatencyP50), f1(nd.LatencyP50), ratio(nd.LatencyP50, j.LatencyP50)+" lower", "")
		row("fan-out latency p99 (ms)", f1(j.LatencyP99), f1(nd.LatencyP99), ratio(nd.LatencyP99, j.LatencyP99)+" lower", "≥ 3x")
		row("fan-out latency max (ms)", f1(j.LatencyMax), f1(nd.LatencyMax), ratio(nd.LatencyMax, j.LatencyMax)+" lower", "")
		row("burst deliveries/s", f0(j.DeliveriesPerSec), f0(nd.DeliveriesPerSec), ratio(j.DeliveriesPerSec, nd.DeliveriesPerSec)+" more", "")
		row("burst latency p99 (ms)", f1(j.BurstLatencyP99), f1(nd.BurstLatencyP99), ratio(nd.BurstLatencyP99, j.BurstLatencyP99)+" lower", "")
		row("delivered / expected", delivered(j), delivered(nd), "", "all")
	}
	fmt.Fprintln(w)
	r.generationsTable(w)
	r.floorTable(w)
	r.centrifugoTable(w)
	r.pusherTable(w)
	for _, x := range r.Results {
		if x.ConnectFailures > 0 || x.Disconnected > 0 || x.TriggerFailures > 0 || x.Duplicates > 0 {
			fmt.Fprintf(w, "- %s (%s clients) N=%d: %d connect failures %v, %d disconnected during the run, %d trigger failures %s, %d duplicates\n",
				x.Server, x.Client, x.N, x.ConnectFailures, x.ConnectErrors, x.Disconnected, x.TriggerFailures, x.TriggerFailureText, x.Duplicates)
		}
	}
	fmt.Fprintln(w, "\n![fan-out latency against subscribers](latency.png)")
}

// generationsTable puts each server's figures with Engine.IO v4 clients (socket.io-client
// 3.x/4.x: server pings, CONNECT packet) beside its figures with v2 clients, and v4
// Jetsocket against v4 Node. Issue 17's targets: v4 memory per idle connection at most
// 1.2x v2's, v4 connects per second at least 0.9x v2's.
func (r *Run) generationsTable(w io.Writer) {
	var rows []string
	for _, n := range r.Settings.Ns {
		j2, j4 := r.FindClient("jetsocket", "v2", n), r.FindClient("jetsocket", "v4", n)
		n2, n4 := r.FindClient("node", "v2", n), r.FindClient("node", "v4", n)
		if j4 == nil && n4 == nil {
			continue
		}
		row := func(name string, get func(*load.Result) float64, show func(float64) string, target string) {
			cell := func(x *load.Result) string {
				if x == nil {
					return "–"
				}
				return show(get(x))
			}
			rat := func(a, b *load.Result) string {
				if a == nil || b == nil {
					return "–"
				}
				return ratio(get(a), get(b))
			}
			rows = append(rows, fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |", n, name,
				cell(j2), cell(j4), rat(j4, j2), cell(n2), cell(n4), rat(n4, n2), rat(j4, n4), target))
		}
		row("connects/s", func(x *load.Result) float64 { return x.ConnectsPerSec }, f0, "jetsocket v4/v2 ≥ 0.9x")
		row("memory per idle connection (KB)", func(x *load.Result) float64 { return float64(x.BytesPerConn) }, func(v float64) string { return kb(int64(v)) }, "jetsocket v4/v2 ≤ 1.2x")
		row("fan-out latency p99 (ms)", func(x *load.Result) float64 { return x.LatencyP99 }, f1, "")
		row("burst deliveries/s", func(x *load.Result) float64 { return x.DeliveriesPerSec }, f0, "")
		row("delivered", func(x *load.Result) float64 { return float64(x.Delivered) }, f0, "all")
	}
	if len(rows) == 0 {
		return
	}
	client := "v4"
	for _, x := range r.Results {
		if strings.HasPrefix(x.Client, "v4") {
			client = x.Client
			break
		}
	}
	fmt.Fprintf(w, "Both client generations: v2 is socket.io-client 2.x's protocol (Engine.IO v3, the client pings, token in the query); %s is 3.x/4.x's (Engine.IO v4, the server pings and the client pongs, a CONNECT packet%s). Same load otherwise.\n\n",
		client, map[bool]string{true: " carrying the token as `auth: {token}`", false: ", token in the query"}[client == "v4+auth"])
	fmt.Fprintln(w, "| N | figure | jetsocket v2 | jetsocket v4 | v4/v2 | node v2 | node v4 | v4/v2 | jetsocket v4 / node v4 | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}

// floorTable puts both servers' fan-out latency next to the floor's (package floor:
// one frame written to each subscriber in a plain loop, nothing else), the least this
// machine allows a single-threaded server.
func (r *Run) floorTable(w io.Writer) {
	var rows []string
	for _, n := range r.Settings.Ns {
		f, j, nd := r.Find("floor", n), r.Find("jetsocket", n), r.Find("node", n)
		if f == nil || j == nil || nd == nil {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %d | %s / %s | %s / %s | %s / %s | %s | %s |", n,
			f1(f.LatencyP50), f1(f.LatencyP99), f1(j.LatencyP50), f1(j.LatencyP99), f1(nd.LatencyP50), f1(nd.LatencyP99),
			ratio(j.LatencyP99, f.LatencyP99), ratio(nd.LatencyP99, f.LatencyP99)))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "Against the floor: a bare Go server that checks nothing and writes one prebuilt frame to each subscriber in a plain loop (`bench/floor`), the least a single-threaded server can do for the same fan-out on this machine.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | floor p50 / p99 (ms) | jetsocket p50 / p99 | node p50 / p99 | jetsocket p99 / floor | node p99 / floor |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}

// centrifugoTable puts Jetsocket with both client generations beside Centrifugo (its own
// JSON protocol over websockets), when the run had it (CENTRIFUGO_BIN). Issue 22's
// targets: connects/s at least 1.2x Centrifugo's, fan-out p99 at least 1.5x lower.
func (r *Run) centrifugoTable(w io.Writer) {
	var rows []string
	for _, n := range r.Settings.Ns {
		c := r.FindClient("centrifugo", "centrifugo", n)
		if c == nil {
			continue
		}
		for _, gen := range []string{"v2", "v4"} {
			j := r.FindClient("jetsocket", gen, n)
			if j == nil {
				continue
			}
			rows = append(rows,
				fmt.Sprintf("| %d | %s | connects/s | %s | %s | %s faster | ≥ 1.2x |", n, gen, f0(j.ConnectsPerSec), f0(c.ConnectsPerSec), ratio(j.ConnectsPerSec, c.ConnectsPerSec)),
				fmt.Sprintf("| %d | %s | fan-out latency p99 (ms) | %s | %s | %s lower | ≥ 1.5x |", n, gen, f1(j.LatencyP99), f1(c.LatencyP99), ratio(c.LatencyP99, j.LatencyP99)),
				fmt.Sprintf("| %d | %s | memory per idle connection, RSS (KB) | %s | %s | %s of centrifugo | |", n, gen, kb(j.BytesPerConn), kb(c.BytesPerConn), ratio(float64(j.BytesPerConn), float64(c.BytesPerConn))),
				fmt.Sprintf("| %d | %s | live heap + stacks per idle connection (KB) | %s | %s | %s of centrifugo | |", n, gen,
					kb(j.HeapAllocPerConn+j.StackPerConn), kb(c.HeapAllocPerConn+c.StackPerConn), ratio(float64(j.HeapAllocPerConn+j.StackPerConn), float64(c.HeapAllocPerConn+c.StackPerConn))),
				fmt.Sprintf("| %d | %s | goroutines per idle connection | %.2f | %.2f | | |", n, gen, j.GoroutinesPerConn, c.GoroutinesPerConn),
				fmt.Sprintf("| %d | %s | burst deliveries/s | %s | %s | %s more | |", n, gen, f0(j.DeliveriesPerSec), f0(c.DeliveriesPerSec), ratio(j.DeliveriesPerSec, c.DeliveriesPerSec)),
				fmt.Sprintf("| %d | %s | delivered / expected | %s | %s | | all |", n, gen, delivered(j), delivered(c)))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "Against Centrifugo: its clients speak its JSON protocol over `/connection/websocket` with a JWT in the connect command, and events go through its server API; the same channel, payload and timing otherwise.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | jetsocket clients | figure | jetsocket | centrifugo | ratio | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}

// Targets reports, per N, which of the targets hold.
func (r *Run) Targets() []string {
	var out []string
	for _, n := range r.Settings.Ns {
		j, nd := r.Find("jetsocket", n), r.Find("node", n)
		if j == nil || nd == nil {
			out = append(out, fmt.Sprintf("N=%d: missing results", n))
			continue
		}
		check := func(name string, ok bool, got string) {
			mark := "ok"
			if !ok {
				mark = "MISSED"
			}
			out = append(out, fmt.Sprintf("N=%d %-28s %-6s %s", n, name, mark, got))
		}
		cr := j.ConnectsPerSec / nd.ConnectsPerSec
		check("connects/s >= 3x", cr >= 3, fmt.Sprintf("%.2fx", cr))
		mr := float64(j.BytesPerConn) / float64(nd.BytesPerConn)
		check("memory/conn <= 1.0x", mr <= 1.0, fmt.Sprintf("%.2fx", mr))
		lr := nd.LatencyP99 / j.LatencyP99
		check("p99 latency >= 3x lower", lr >= 3, fmt.Sprintf("%.2fx", lr))
		check("all delivered (jetsocket)", j.Lost() == 0 && j.Expected > 0, delivered(j))
		check("all delivered (node)", nd.Lost() == 0 && nd.Expected > 0, delivered(nd))
		if j4 := r.FindClient("jetsocket", "v4", n); j4 != nil {
			c4 := j4.ConnectsPerSec / j.ConnectsPerSec
			check("v4 connects/s >= 0.9x v2", c4 >= 0.9, fmt.Sprintf("%.2fx", c4))
			m4 := float64(j4.BytesPerConn) / float64(j.BytesPerConn)
			check("v4 memory/conn <= 1.2x v2", m4 <= 1.2, fmt.Sprintf("%.2fx", m4))
			check("all delivered (jetsocket v4)", j4.Lost() == 0 && j4.Expected > 0, delivered(j4))
		}
		if n4 := r.FindClient("node", "v4", n); n4 != nil {
			check("all delivered (node v4)", n4.Lost() == 0 && n4.Expected > 0, delivered(n4))
		}
	}
	return out
}

func delivered(x *load.Result) string { return fmt.Sprintf("%d / %d", x.Delivered, x.Expected) }
func f0(v float64) string             { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string             { return fmt.Sprintf("%.1f", v) }
func kb(b int64) string               { return fmt.Sprintf("%.1f", float64(b)/1024) }

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
