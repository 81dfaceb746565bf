package protocol

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The README's tables mirror the catalogue: every event name and code defined in
// catalog.go appears in the README.
func TestREADMEMirrorsTheCatalogue(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
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
			if !strings.Contains(string(readme), v) {
				t.Errorf("%s (%q) is not in the README", name.Name, v)
			}
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found only %d names and codes in catalog.go", n)
	}
}
