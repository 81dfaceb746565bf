// Package goroutinetest finds goroutines' stacks for the tests that check where, or
// whether, a connection's goroutine waits (none while it is idle, or a small stack).
package goroutinetest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// In is the stack of the one goroutine with a frame of fn (as in a stack trace,
// "pkg.(*T).Method"), failing t when there is not exactly one.
func In(t testing.TB, fn string) string {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn+"(") {
			found = append(found, g)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d goroutines in %s, want 1", len(found), fn)
	}
	return found[0]
}

// NoneIn waits up to 5 s until no goroutine has a frame of any of fns, failing t with
// the stacks of those that still do.
func NoneIn(t testing.TB, fns ...string) {
	t.Helper()
	var held []string
	Eventually(t, "no goroutine in "+strings.Join(fns, ", "), func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		held = held[:0]
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, fn := range fns {
				if strings.Contains(g, fn+"(") {
					held = append(held, g)
					break
				}
			}
		}
		return len(held) == 0
	}, func() string { return strings.Join(held, "\n\n") })
}

// Eventually polls cond every 5 ms for up to 5 s, failing t with what (and the text of
// each detail) when it never holds.
func Eventually(t testing.TB, what string, cond func() bool, details ...func() string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			msg := what + ": not within 5 s"
			for _, d := range details {
				msg += "\n" + d()
			}
			t.Fatal(msg)
		}
	}
}
