// Command jetsocket runs the Jetsocket realtime server, or one of its operator commands
// (users, secrets, token, config check). See README.md and docs/production.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/server/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A realtime server's heap is mostly small long-lived objects, one set per idle
	// connection; a GC target of 50% keeps resident memory nearer the live heap than
	// Go's default 100% (BENCHMARKS.md has the figures). GOGC, when set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	serve := func(ctx context.Context, args []string) error {
		return server.Run(ctx, args, os.Getenv, os.Stdout, os.Stderr)
	}
	code := cli.Main(ctx, os.Args[1:], cli.IO{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, serve)
	stop()
	os.Exit(code)
}
