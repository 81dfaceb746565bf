package protocol

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The documentation mirrors the catalogue: every event name and code defined in
// catalog.go appears in the README or a file of docs/ (the tables of docs/clients.md
// and docs/channels.md hold most of them).
func TestDocsMirrorTheCatalogue(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	var docs strings.Builder
	for _, name := range append([]string{"../../README.md"}, files...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
		docs.WriteByte('\n')
	}
	f, err := parser.ParseFile(token.NewFileSet(), "catalog.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Event") && !strings.HasPrefix(name.Name, "Code") {
				continue
			}
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok {
				continue // defined in another package and listed here by reference
			}
			v, _ := strconv.Unquote(lit.Value)
			n++
			if !strings.Contains(docs.String(), v) {
				t.Errorf("%s (%q) is not in the README or docs/", name.Name, v)
			}
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found only %d names and codes in catalog.go", n)
	}
}
