package controller

import (
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/plan"
)

// checkPath refuses a MeshUpgrade whose release jump is not one supported
// canary hop (the version path `meshroll upgrade` plans): a target more than
// two minors ahead, or an older minor. The CLI splits such a jump into one
// MeshUpgrade per hop; a MeshUpgrade applied from Git names one revision
// pair, so the controller says which hops to apply instead of migrating
// every proxy across an unsupported skew. from and to are Istio releases;
// either unknown (a revision whose image names no release) is left to the
// plan's other checks.
func checkPath(from, to string) error {
	fromV, err1 := plan.ParseVersion(from)
	toV, err2 := plan.ParseVersion(to)
	if err1 != nil || err2 != nil {
		return nil
	}
	// The target is renderable whatever the binary ships: --repo or
	// --charts may serve releases the built-in list lacks.
	path, err := controlplane.CheckPath([]controlplane.InstalledRevision{{Name: "spec.from", Version: fromV}}, toV, append(plan.Renderable(), toV))
	switch {
	case err == nil:
		return nil
	case len(path.Hops) < 2:
		return fmt.Errorf("Istio %s → %s is not a supported upgrade: %w", fromV, toV, err)
	}
	releases := make([]string, 0, len(path.Hops))
	for _, h := range path.Hops {
		releases = append(releases, h.To.String())
	}
	return fmt.Errorf("Istio %s → %s takes %d canary hops (%s → %s): apply one MeshUpgrade per hop, each after the one before succeeded (spec.version %s first), or run `meshroll upgrade --to %s`, which runs them in order",
		fromV, toV, len(path.Hops), fromV, strings.Join(releases, " → "), releases[0], toV)
}
