package errs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// catalogue reads codes.go: constant name → code.
func catalogue(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(map[string]string)
	seen := make(map[string]string)
	valid := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			v, ok := stringLit(spec.Values[i])
			if !ok || !strings.HasPrefix(name.Name, "Code") {
				t.Errorf("codes.go: %s is not a Code constant with a string literal", name.Name)
				continue
			}
			if !valid.MatchString(v) {
				t.Errorf("codes.go: %s = %q is not snake_case", name.Name, v)
			}
			if other, dup := seen[v]; dup {
				t.Errorf("codes.go: %s and %s are both %q", other, name.Name, v)
			}
			seen[v] = name.Name
			codes[name.Name] = v
		}
		return true
	})
	if len(codes) < 40 {
		t.Fatalf("found only %d codes in codes.go", len(codes))
	}
	return codes
}

// Every code of the catalogue is documented: docs/errors.md has one row for each, and
// no row for a code the catalogue does not have.
func TestEveryCodeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[string]bool)
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]] = true
	}
	codes := make(map[string]bool)
	for name, code := range catalogue(t) {
		codes[code] = true
		if !rows[code] {
			t.Errorf("%s (%q) has no row in docs/errors.md", name, code)
		}
	}
	for code := range rows {
		if !codes[code] {
			t.Errorf("docs/errors.md lists %q, which server/errs/codes.go does not define", code)
		}
	}
}

// literalExceptions are string literals equal to a code that mean something else, each
// with why: file → the literal.
var literalExceptions = map[string]map[string]bool{
	// tokens.ReasonTooLarge: why a token was refused (jetsocket_auth_failures_total's
	// reason), a vocabulary of its own that happens to share the word.
	"tokens/tokens.go": {"too_large": true},
}

// No code is spelled as a string literal outside the catalogue: every errs.New,
// errs.WriteStatus and errs.Error{Code} names a predefined code, and no other literal
// equals one (a socket.io ERROR or CONNECT_ERROR, a metric label or a log field that is
// a code takes the constant too). A new code is added to codes.go first.
func TestCodesAreNotLiterals(t *testing.T) {
	byValue := make(map[string]string)
	for name, code := range catalogue(t) {
		byValue[code] = name
	}
	for _, sf := range serverSources(t) {
		report := func(n ast.Node, format string, args ...any) {
			t.Errorf("%s: "+format, append([]any{sf.fset.Position(n.Pos())}, args...)...)
		}
		ast.Inspect(sf.file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ImportSpec, *ast.Field:
				return false // import paths and struct tags
			case *ast.BasicLit:
				if v, ok := stringLit(n); ok && byValue[v] != "" && !literalExceptions[sf.rel][v] {
					report(n, "the code %q as a literal: use errs.%s", v, byValue[v])
				}
			case *ast.CallExpr:
				codeArg := -1
				switch {
				case isSel(n.Fun, "errs", "New"):
					codeArg = 1
				case isSel(n.Fun, "errs", "WriteStatus"):
					codeArg = 2
				}
				if codeArg >= 0 && codeArg < len(n.Args) {
					if v, ok := stringLit(n.Args[codeArg]); ok {
						report(n, "a code that is not in the catalogue, %q: add it to server/errs/codes.go", v)
					}
				}
			case *ast.CompositeLit:
				if isSel(n.Type, "errs", "Error") {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Code" {
								if v, ok := stringLit(kv.Value); ok {
									report(n, "a code that is not in the catalogue, %q: add it to server/errs/codes.go", v)
								}
							}
						}
					}
				}
			}
			return true
		})
	}
}
