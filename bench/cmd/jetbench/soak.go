package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/bench/harness"
	"github.com/jetsocket/jetsocket/bench/soak"
)

// soakCmd starts Jetsocket (or targets -url), runs the soak and prints its figures. A
// leak or a failed cycle is an error, so the exit status says it.
func soakCmd(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("soak", flag.ContinueOnError)
	bin := fl.String("jetsocket", ".bin/jetsocket", "the jetsocket binary to start (ignored with -url)")
	rawURL := fl.String("url", "", "drive a running server at this base URL instead of starting one")
	debugURL := fl.String("debug-url", "", "with -url: the server's DEBUG_ADDR as a URL, to force a GC before each sample")
	jwtSecret := fl.String("jwt-secret", os.Getenv("JWT_SECRET"), "with -url: the server's JWT secret, to mint tokens")
	cycles := fl.Int("cycles", 10_000, "connection lifecycles to run")
	warmup := fl.Int("warmup", 500, "cycles run before the baseline is taken")
	concurrency := fl.Int("concurrency", 16, "cycles in flight")
	kinds := fl.String("kinds", "quick", "lifecycles, in turn: quick, all (adds probe-drop, which ends at the 85 s ping timeout), or a list of "+kindNames())
	settle := fl.Duration("settle", 60*time.Second, "longest wait for the server to return to its baseline")
	gSlack := fl.Int64("goroutine-slack", soak.DefaultTolerance.Goroutines, "goroutines allowed above the baseline")
	rssSlack := fl.Int64("rss-slack-mb", soak.DefaultTolerance.RSSBytes>>20, "RSS allowed above the baseline, MB (or the -rss-slack-fraction of it, whichever is larger)")
	rssFrac := fl.Float64("rss-slack-fraction", soak.DefaultTolerance.RSSFraction, "RSS allowed above the baseline, as a fraction of it")
	if err := fl.Parse(args); err != nil {
		return err
	}
	ks, err := soak.ParseKinds(*kinds)
	if err != nil {
		return fmt.Errorf("-kinds: %w", err)
	}
	if *cycles <= 0 || *concurrency <= 0 || *warmup < 0 {
		return errors.New("-cycles and -concurrency must be positive, -warmup not negative")
	}
	settleFor := *settle
	for _, k := range ks {
		if k == soak.ProbeDrop && settleFor < 2*time.Minute {
			settleFor = 2 * time.Minute // abandoned sessions end at the ping timeout
		}
	}
	tol := soak.DefaultTolerance
	tol.Goroutines, tol.RSSBytes, tol.RSSFraction = *gSlack, *rssSlack<<20, *rssFrac

	target := soak.Target{}
	secret := *jwtSecret
	if *rawURL != "" {
		if target.URL, err = url.Parse(*rawURL); err != nil || target.URL.Host == "" {
			return fmt.Errorf("-url: %q is not a base URL", *rawURL)
		}
		if *debugURL != "" {
			if target.DebugURL, err = url.Parse(*debugURL); err != nil || target.DebugURL.Host == "" {
				return fmt.Errorf("-debug-url: %q is not a URL", *debugURL)
			}
		}
	} else {
		secret = randomHex(32)
		// The harness gives a Jetsocket spec its pprof listener (DebugEnv) and reports
		// it as DebugURL: a second DEBUG_ADDR here would be overridden by that one.
		p, err := harness.Start(ctx, harness.Jetsocket(*bin), harness.Credentials{JWTSecret: secret, AppID: "soak", AppKey: "soak-key", AppSecret: randomHex(16)})
		if err != nil {
			return err
		}
		if p.DebugURL == nil {
			p.Stop()
			return errors.New("the jetsocket spec has no pprof listener (DebugEnv)")
		}
		defer p.Stop()
		target.URL = p.URL
		target.DebugURL = p.DebugURL
		defer func() {
			if p.Exited() {
				fmt.Fprintf(out, "server exited during the soak:\n%s\n", p.Output())
			}
		}()
	}
	mint, err := tokenMinter(secret)
	if err != nil {
		return fmt.Errorf("-jwt-secret: %w", err)
	}
	target.Token = func(i int) (string, error) { return mint(i) }

	fmt.Fprintf(out, "jetbench soak: %d cycles (+%d warm-up), %d in flight, kinds %v, against %s\n", *cycles, *warmup, *concurrency, ks, target.URL)
	rep, err := soak.Run(ctx, target, soak.Config{
		Cycles: *cycles, Warmup: *warmup, Concurrency: *concurrency, Kinds: ks, Settle: settleFor, Tolerance: tol,
		Logf: func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	printSoak(out, rep)
	if !rep.Passed() {
		return fmt.Errorf("soak failed: %s", soakFailure(rep))
	}
	return nil
}

func printSoak(out io.Writer, rep *soak.Report) {
	var byKind []string
	for _, k := range soak.AllKinds {
		if n := rep.ByKind[k]; n > 0 {
			byKind = append(byKind, fmt.Sprintf("%s %d", k, n))
		}
	}
	fmt.Fprintf(out, "  cycles: %s\n", strings.Join(byKind, ", "))
	for _, e := range rep.Errors {
		fmt.Fprintf(out, "  failed cycle: %s\n", e)
	}
	fmt.Fprintf(out, "  settled %s after the last cycle\n", rep.Settled.Round(100*time.Millisecond))
	for _, c := range rep.Checks {
		fmt.Fprintf(out, "  %s\n", c)
	}
	if rep.Passed() {
		fmt.Fprintln(out, "soak: PASS")
	} else {
		fmt.Fprintln(out, "soak: FAIL")
	}
}

func soakFailure(rep *soak.Report) string {
	var why []string
	if rep.Failed > 0 {
		why = append(why, fmt.Sprintf("%d of %d cycles failed", rep.Failed, rep.Cycles))
	}
	for _, c := range rep.Checks {
		if !c.OK {
			why = append(why, c.Name+" did not return to baseline")
		}
	}
	return strings.Join(why, "; ")
}

func kindNames() string {
	var s []string
	for _, k := range soak.AllKinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}
