package main

import (
	"os"
	"strings"
	"testing"
)

// The example of docs/extending.md is this program, byte for byte, so that what the
// docs show is what the end-to-end test runs.
func TestDocsShowThisFile(t *testing.T) {
	doc, err := os.ReadFile("../../docs/extending.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := strings.CutPrefix(string(doc), "# Extending\n")
	if !ok {
		t.Fatal("docs/extending.md does not start with its Extending heading")
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
		t.Fatalf("docs/extending.md's example differs from examples/extending/main.go:\n--- docs/extending.md\n%s\n--- main.go\n%s", block, src)
	}
	if n := strings.Count(block, "\n"); n >= 60 {
		t.Fatalf("the example has %d lines; keep it under 60", n)
	}
}
