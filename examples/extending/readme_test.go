package main

import (
	"os"
	"strings"
	"testing"
)

// The README's "Extending" example is this program, byte for byte, so that what the
// README shows is what the end-to-end test runs.
func TestREADMEShowsThisFile(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Extending\n")
	if !ok {
		t.Fatal("README has no Extending section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal("the Extending section has no Go code block")
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("the Go code block is not closed")
	}
	if block != string(src) {
		t.Fatalf("README's example differs from examples/extending/main.go:\n--- README\n%s\n--- main.go\n%s", block, src)
	}
	if n := strings.Count(block, "\n"); n >= 60 {
		t.Fatalf("the example has %d lines; keep it under 60", n)
	}
}
