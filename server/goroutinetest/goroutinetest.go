// Package goroutinetest finds a goroutine's stack in the tests that check where a
// connection's goroutine waits (on a small stack, not in a read).
package goroutinetest

import (
	"runtime"
	"strings"
	"testing"
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
