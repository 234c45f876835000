// Package istiodtest helps integration tests look at the real istiods of
// their package's sandbox: sandboxtest.Main runs the sandbox's istiod runner
// in the test binary (package sandbox/istiod), and these helpers find its
// istiods and wait for them.
package istiodtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// Start returns the istiod runner that serves the package's sandbox
// (sandboxtest.Istiod). It skips the test, saying why, when the sandbox runs
// no istiod (a host without CAP_NET_ADMIN, an API-only sandbox).
func Start(tb testing.TB) *istiod.Runner {
	tb.Helper()
	return sandboxtest.Istiod(tb)
}

// Run runs an istiod runner for a sandbox the test started itself (not the
// package's sandboxtest one, which already has its runner) until the test
// ends, and returns it. It skips the test, saying why, when that sandbox
// runs no istiod.
func Run(tb testing.TB, st *sandbox.State) *istiod.Runner {
	tb.Helper()
	if st.Istiod != sandbox.IstiodReal {
		tb.Skipf("real istiod unavailable in sandbox %s: %s", st.Dir, st.IstiodNote)
	}
	cfg, err := st.RESTConfig()
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := istiod.New(cfg, istiod.Options{Dir: st.Dir, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			tb.Errorf("istiod runner of sandbox %s: %v", st.Dir, err)
		}
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return r
}

// WaitReady waits until the runner serves pod (namespace/name prefix, e.g.
// "istio-system/istiod-1-24-2-") with an istiod that answers its readiness
// probe, and returns it.
func WaitReady(tb testing.TB, r *istiod.Runner, podPrefix string, timeout time.Duration) istiod.Instance {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var seen []istiod.Instance
	for time.Now().Before(deadline) {
		seen = r.Instances(tb.Context())
		for _, in := range seen {
			if len(in.Pod) >= len(podPrefix) && in.Pod[:len(podPrefix)] == podPrefix && in.Ready {
				return in
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	tb.Fatalf("no ready istiod for %s within %s; runner has %s", podPrefix, timeout, describe(seen))
	return istiod.Instance{}
}

func describe(ins []istiod.Instance) string {
	if len(ins) == 0 {
		return "none"
	}
	s := ""
	for _, in := range ins {
		s += fmt.Sprintf("\n  %s %s %s ready=%t restarts=%d log=%s", in.Pod, in.IP, in.Version, in.Ready, in.Restarts, in.Log)
	}
	return s
}
