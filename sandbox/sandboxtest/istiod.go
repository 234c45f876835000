package sandboxtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod"
)

// runner is the istiod runner of this test binary: istiods installed by one
// test keep serving the next, so Main starts it once, before the tests, and
// stops it (and every istiod) after them. It is the test binary's one
// sandbox, like the environment variable that names its directory.
var runner istiodRunner

// istiodRunner holds the runner Main started, or why there is none.
type istiodRunner struct {
	mu sync.Mutex
	r  *istiod.Runner
	// why says why there is no runner to give a test, "" when there is.
	why string
	// done is closed once the runner stopped every istiod.
	done chan struct{}
}

// startIstiod runs the istiod runner against the sandbox st in this process,
// unless the sandbox has no pods (API only), cannot run istiod (no route:
// st.IstiodNote says why), or already has a runner process (a sandbox a
// developer started with `meshroll sandbox up` and reuses through
// MESHROLL_SANDBOX_DIR: its runner serves the istiods).
func startIstiod(ctx context.Context, st *sandbox.State, apiOnly bool) error {
	runner.mu.Lock()
	defer runner.mu.Unlock()
	switch {
	case apiOnly:
		runner.why = "the package's sandbox is API-only (sandboxtest.WithAPIOnly): no pods, no istiod"
		return nil
	case st.Istiod != sandbox.IstiodReal:
		runner.why = "this host cannot run istiod in the sandbox: " + st.IstiodNote
		fmt.Fprintf(os.Stderr, "sandboxtest: tests that install Istio are skipped: %s\n", runner.why)
		return nil
	case runnerProcess(st):
		runner.why = "the sandbox's own istiod runner process serves its istiods (`meshroll sandbox istiod list`)"
		return nil
	}
	cfg, err := st.RESTConfig()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := istiod.New(cfg, istiod.Options{Dir: st.Dir, Logger: log})
	if err != nil {
		return fmt.Errorf("failed to start istiod runner %q: %w", st.Dir, err)
	}
	runner.r, runner.done = r, make(chan struct{})
	go func() {
		defer close(runner.done)
		if err := r.Run(ctx); err != nil {
			log.Error("istiod runner stopped", "err", err)
		}
	}()
	return nil
}

// runnerProcess says whether the sandbox runs an istiod runner process.
func runnerProcess(st *sandbox.State) bool {
	for _, p := range st.Processes {
		if p.Name == sandbox.RunnerProcessName && p.Running {
			return true
		}
	}
	return false
}

// wait blocks until the runner Main started (if any) stopped its istiods.
func (r *istiodRunner) wait() {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Istiod returns the istiod runner serving the package's sandbox, which
// Main started; it skips the test, saying why, when there is none (a host
// without CAP_NET_ADMIN, an API-only sandbox).
func Istiod(tb testing.TB) *istiod.Runner {
	tb.Helper()
	Dir(tb)
	runner.mu.Lock()
	defer runner.mu.Unlock()
	if runner.r == nil {
		tb.Skip("real istiod unavailable: " + runner.why)
	}
	return runner.r
}
