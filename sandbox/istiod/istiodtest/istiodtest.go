// Package istiodtest runs the sandbox's istiod runner inside a test binary,
// so integration tests that install Istio get its webhooks answered by real
// istiod without `sandbox up` starting the runner as a process of its own.
// The package's sandbox must be started in real-istiod mode
// (sandboxtest.WithRealIstiod).
package istiodtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/injector"
	"github.com/meshroll/meshroll/sandbox/istiod"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// started remembers the one runner of this test binary: istiods installed by
// one test keep serving the next, so it is started once and runs until the
// process exits (its istiods die with it, see istiod's dieWithParent).
var started struct {
	sync.Once
	runner *istiod.Runner
	skip   string
	err    error
}

// Start runs the istiod runner against cfg's cluster once per test binary and
// returns it; later calls return the same runner. It skips the test, saying
// why, when the sandbox could not start in real-istiod mode.
func Start(tb testing.TB, cfg *rest.Config) *istiod.Runner {
	tb.Helper()
	dir := sandboxtest.Dir(tb)
	started.Do(func() { started.runner, started.skip, started.err = start(dir, cfg) })
	if started.skip != "" {
		tb.Skip(started.skip)
	}
	if started.err != nil {
		tb.Fatalf("istiod runner: %v", started.err)
	}
	return started.runner
}

func start(dir string, cfg *rest.Config) (*istiod.Runner, string, error) {
	ctx := context.Background()
	st, err := sandbox.Status(ctx, dir)
	if err != nil {
		return nil, "", err
	}
	if st.Istiod != sandbox.IstiodReal {
		why := st.IstiodNote
		if why == "" {
			why = "the package's sandbox was not started with sandboxtest.WithRealIstiod()"
		}
		return nil, "real istiod unavailable: " + why, nil
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	// A stand-in's endpoint would make meshroll rewrite Istio's webhooks.
	if err := injector.Withdraw(ctx, kc); err != nil {
		return nil, "", err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := istiod.New(cfg, istiod.Options{Dir: dir, Logger: log})
	if err != nil {
		return nil, "", err
	}
	go func() {
		if err := r.Run(ctx); err != nil {
			log.Error("istiod runner stopped", "err", err)
		}
	}()
	return r, "", nil
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
