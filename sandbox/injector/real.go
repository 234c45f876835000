package injector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod"
)

// realMode reports whether the sandbox started this process to run real
// istiod instead of the stand-in: `sandbox up` passes sandbox.EnvIstiod to
// its injector process. The process keeps its name and command line (the
// CLI starts `meshroll sandbox injector` either way) until the CLI grows its
// own flag for the mode; what it serves is whatever answers Istio's webhooks.
func realMode() bool { return os.Getenv(sandbox.EnvIstiod) == sandbox.IstiodReal }

// RunReal withdraws the stand-in's endpoint (so meshroll no longer rewrites
// Istio's webhooks) and runs the sandbox's istiod runner (package
// sandbox/istiod) until ctx is done, answering its health check on opts.Addr.
// Its istiods log under the sandbox directory (sandbox.EnvDir, else the
// parent of opts.CertDir).
func RunReal(ctx context.Context, cfg *rest.Config, opts Options) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create client for %q: %w", cfg.Host, err)
	}
	if err := Withdraw(ctx, client); err != nil {
		return err
	}
	dir := os.Getenv(sandbox.EnvDir)
	if dir == "" {
		dir = filepath.Dir(opts.CertDir)
	}
	return istiod.Run(ctx, cfg, istiod.Options{Dir: dir, Addr: opts.Addr, Logger: opts.Logger})
}
