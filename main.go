// Command jetsocket runs the Jetsocket realtime server. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/jetsocket/jetsocket/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A realtime server's heap is mostly small long-lived objects, one set per idle
	// connection; a GC target of 50% keeps resident memory nearer the live heap than
	// Go's default 100% (BENCHMARKS.md has the figures). GOGC, when set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if err := server.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "jetsocket:", err)
		os.Exit(1)
	}
}
