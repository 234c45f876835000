// Package fleettest holds what the fleet e2e test and the fleet benchmark
// both need: running work over many sandboxes at once, and the meshroll
// binary they drive.
package fleettest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Each calls fn for every item, at most n at once, and returns the first
// error in item order. Sandboxes start n at a time because two cores do
// not start five API servers at once any faster.
func Each[T any](n int, items []T, fn func(T) error) error {
	sem := make(chan struct{}, n)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(it)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// BuildMeshroll builds the CLI into dir and returns its path.
func BuildMeshroll(dir string) (string, error) {
	bin := filepath.Join(dir, "meshroll")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/meshroll/meshroll/cmd/meshroll")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// MustBuildMeshroll is BuildMeshroll into the test's temporary directory.
func MustBuildMeshroll(tb testing.TB) string {
	tb.Helper()
	bin, err := BuildMeshroll(tb.TempDir())
	if err != nil {
		tb.Fatalf("go build meshroll: %v", err)
	}
	return bin
}
