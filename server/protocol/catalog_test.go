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
	codes := errsCodes(t)
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
			var v string
			switch val := spec.Values[i].(type) {
			case *ast.BasicLit:
				v, _ = strconv.Unquote(val.Value)
			case *ast.SelectorExpr: // a code of the catalogue in server/errs
				if pkg, ok := val.X.(*ast.Ident); !ok || pkg.Name != "errs" {
					continue // defined in another package and listed here by reference
				}
				if v, ok = codes[val.Sel.Name]; !ok {
					t.Fatalf("%s: errs.%s is not in server/errs/codes.go", name.Name, val.Sel.Name)
				}
			default:
				continue
			}
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

// errsCodes reads server/errs/codes.go: constant name → code.
func errsCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../errs/codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(map[string]string)
	ast.Inspect(f, func(node ast.Node) bool {
		if spec, ok := node.(*ast.ValueSpec); ok {
			for i, name := range spec.Names {
				if lit, ok := spec.Values[i].(*ast.BasicLit); ok {
					codes[name.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
		return true
	})
	return codes
}
