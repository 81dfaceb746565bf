package errs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write is the one writer of HTTP error bodies: no other Go file of the server builds
// the body itself (an errs.Body literal) or through gin (AbortWithStatusJSON), so the
// shape and Content-Type cannot drift. docs/ and bench/ are not the server.
func TestWriteIsTheOneErrorBodyWriter(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case ".git", "docs", "bench", "e2e", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(rel) == filepath.Join("server", "errs") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, bad := range []string{"errs.Body{", "AbortWithStatusJSON("} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s writes an error body itself (%s): answer through errs.Write", rel, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
