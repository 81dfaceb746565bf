package errs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module's root, from this package's directory.
var repoRoot = filepath.Join("..", "..")

// serverFile is one non-test Go file of the server, parsed.
type serverFile struct {
	rel  string // path from the repository root
	fset *token.FileSet
	file *ast.File
}

// serverSources parses every non-test Go file of the server outside server/errs. docs/
// and bench/ are not the server; example-client/ is an app backend of the user's (its
// own main and error codes), not the server.
func serverSources(t *testing.T) []serverFile {
	t.Helper()
	var out []serverFile
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			switch rel {
			case ".git", "docs", "bench", "e2e", "node_modules", "example-client", filepath.Join("server", "errs"):
				return filepath.SkipDir
			}
			if d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		out = append(out, serverFile{rel: filepath.ToSlash(rel), fset: fset, file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d Go files of the server", len(out))
	}
	return out
}

// stringLit is the value of e when it is a string literal.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

// isSel reports whether e is pkg.name.
func isSel(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// nonErrorStatuses are the net/http status names below 400 that the server writes.
// Any other status written outside errs is an error answer.
var nonErrorStatuses = map[string]bool{
	"StatusOK": true, "StatusCreated": true, "StatusAccepted": true, "StatusNoContent": true,
	"StatusSwitchingProtocols": true, "StatusNotModified": true, "StatusFound": true,
	"StatusMovedPermanently": true, "StatusTemporaryRedirect": true, "StatusPermanentRedirect": true,
}

// errorStatus reports whether e is a status of 400 or more: http.StatusXxx not in
// nonErrorStatuses, or an integer literal.
func errorStatus(e ast.Expr) bool {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == "http" && strings.HasPrefix(sel.Sel.Name, "Status") {
			return !nonErrorStatuses[sel.Sel.Name]
		}
		return false
	}
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.INT {
		n, err := strconv.Atoi(lit.Value)
		return err == nil && n >= 400
	}
	return false
}

// oneWriterExceptions are the answers with an error status that are not error bodies,
// each with why: file → the call that writes it.
var oneWriterExceptions = map[string]string{
	// GET /readyz's 503 is the readiness check's own answer {status:"unavailable",
	// message}, documented as such, not a refusal of the request.
	"handlers/health.go": "c.JSON(http.StatusServiceUnavailable",
}

// Write is the one writer of HTTP error bodies: no other Go file of the server writes an
// error status or builds an error body itself, whatever the package (gin handlers,
// middleware, the socket layer, either Engine.IO engine), so the shape {error, message}
// and the Content-Type cannot drift. Caught: an errs.Body literal; gin's
// AbortWithStatusJSON, AbortWithError; http.Error; WriteHeader, JSON, String, Data,
// Status or AbortWithStatus with a status of 400 or more; a map literal with "error" and
// "message" keys; a string literal holding JSON with an "error" or "code" member.
func TestWriteIsTheOneErrorBodyWriter(t *testing.T) {
	for _, sf := range serverSources(t) {
		report := func(n ast.Node, what string) {
			if call, ok := oneWriterExceptions[sf.rel]; ok {
				if strings.Contains(what, call) {
					return
				}
			}
			t.Errorf("%s: writes an error answer itself (%s): answer through errs.Write", sf.fset.Position(n.Pos()), what)
		}
		ast.Inspect(sf.file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if isSel(n.Type, "errs", "Body") {
					report(n, "errs.Body{...}")
				}
				if _, isMap := n.Type.(*ast.MapType); isMap || isSel(n.Type, "gin", "H") {
					keys := make(map[string]bool)
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := stringLit(kv.Key); ok {
								keys[k] = true
							}
						}
					}
					// {error, message} is the HTTP body; an ack {ok:false, status, code,
					// error} is a socket answer, not an HTTP one.
					if keys["error"] && keys["message"] {
						report(n, `a map {"error", "message"}`)
					}
				}
			case *ast.BasicLit:
				if v, ok := stringLit(n); ok && (strings.Contains(v, `"code":`) || strings.Contains(v, `"error":`)) {
					report(n, "JSON built by hand: "+strconv.Quote(v))
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				name := sel.Sel.Name
				switch {
				case name == "AbortWithStatusJSON" || name == "AbortWithError":
					report(n, name+"(...)")
				case isSel(n.Fun, "http", "Error"):
					report(n, "http.Error(...)")
				case (name == "WriteHeader" || name == "JSON" || name == "String" || name == "Data" ||
					name == "Status" || name == "AbortWithStatus") && len(n.Args) > 0 && errorStatus(n.Args[0]):
					recv := "…"
					if id, ok := sel.X.(*ast.Ident); ok {
						recv = id.Name
					}
					arg := n.Args[0]
					status := ""
					if s, ok := arg.(*ast.SelectorExpr); ok {
						status = "http." + s.Sel.Name
					} else if l, ok := arg.(*ast.BasicLit); ok {
						status = l.Value
					}
					report(n, recv+"."+name+"("+status)
				}
			}
			return true
		})
	}
}
