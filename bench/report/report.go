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

// Find returns the result for server at n, or nil.
func (r *Run) Find(server string, n int) *load.Result {
	for _, x := range r.Results {
		if x.Server == server && x.N == n {
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
	fmt.Fprintf(w, "Each N: a fresh server; N websocket connections (Engine.IO v3, a distinct JWT each, %d connects in flight), each subscribed with an ack to one channel; %s idle, then resident memory; %d events triggered one at a time through the signed HTTP API (latency), then %d back to back (deliveries per second).\n\n",
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
	r.floorTable(w)
	for _, x := range r.Results {
		if x.ConnectFailures > 0 || x.Disconnected > 0 || x.TriggerFailures > 0 || x.Duplicates > 0 {
			fmt.Fprintf(w, "- %s N=%d: %d connect failures %v, %d disconnected during the run, %d trigger failures %s, %d duplicates\n",
				x.Server, x.N, x.ConnectFailures, x.ConnectErrors, x.Disconnected, x.TriggerFailures, x.TriggerFailureText, x.Duplicates)
		}
	}
	fmt.Fprintln(w, "\n![fan-out latency against subscribers](latency.png)")
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
