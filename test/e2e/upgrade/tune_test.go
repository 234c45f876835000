package upgrade

import (
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// tuneForFaults shortens the engine's patience so that fault tests stall
// and give up in seconds: each request times out after 4s (stalls of up to
// 6s are injected) and a lasting transient error stops the run after 15s.
func tuneForFaults(e *upgrade.Engine) {
	e.RequestTimeout = 4 * time.Second
	e.RetryFor = 15 * time.Second
}

// withBudget lets n workloads of each wave fail (and be put back).
func withBudget(mu *v1alpha1.MeshUpgrade, n int) { mu.Spec.Strategy.MaxFailedWorkloads = n }
