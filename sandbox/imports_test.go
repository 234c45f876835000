package sandbox_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sandboxImporters are the only production files allowed to import the
// sandbox: the CLI commands that start it (`meshroll sandbox …`, `meshroll
// demo`). Everything else meshroll ships runs against real clusters and must
// not know the sandbox exists (DESIGN.md's safety invariants; #9 defect 8).
var sandboxImporters = map[string]bool{
	"internal/cli/sandbox.go":        true,
	"internal/cli/sandbox_istiod.go": true,
	"internal/cli/demo.go":           true,
}

// TestProductionCodeDoesNotImportSandbox parses every non-test Go file under
// internal/ and cmd/ and fails on any import of the sandbox module path
// (github.com/meshroll/meshroll/sandbox and below) outside sandboxImporters.
func TestProductionCodeDoesNotImportSandbox(t *testing.T) {
	const sandboxPath = "github.com/meshroll/meshroll/sandbox"
	root := filepath.Join("..")
	checked := 0
	for _, top := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					return err
				}
				if (p == sandboxPath || strings.HasPrefix(p, sandboxPath+"/")) && !sandboxImporters[rel] {
					t.Errorf("%s imports %s: production code must not know the sandbox (only %v may start it)", rel, p, keys(sandboxImporters))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d files under internal/ and cmd/: is the walk rooted at the module?", checked)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
