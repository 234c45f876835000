package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/fleet"
)

// errNotPickedUp: the engine that was expected to run the FleetUpgrade (the
// hub's controller) recorded nothing within the pickup time, so the CLI
// runs it itself.
var errNotPickedUp = errors.New("no engine picked the FleetUpgrade up")

// followFleetUpgrade prints the FleetUpgrade's history as another engine
// (the hub's `meshroll controller`, or another CLI run) records it, until
// its phase is final. With pickup > 0 it gives up with errNotPickedUp when
// the record has not changed for that long (a controller that does not
// reconcile FleetUpgrades: an older one, or one run with --no-fleet).
func followFleetUpgrade(ctx context.Context, w io.Writer, s fleet.Store, name string, poll, pickup time.Duration) (*v1alpha1.FleetUpgrade, error) {
	start := time.Now()
	first, logged := "", -1
	for {
		fu, err := s.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("failed to read FleetUpgrade %q: %w", name, err)
		}
		if first == "" {
			first = fu.ResourceVersion
		}
		if logged < 0 {
			logged = len(fu.Status.History)
		}
		for _, ev := range fu.Status.History[min(logged, len(fu.Status.History)):] {
			fmt.Fprintln(w, fleet.EventLine(ev))
		}
		logged = len(fu.Status.History)
		if fu.Status.Phase.Final() && !(fu.Spec.RollbackRequested && fu.Status.Phase != v1alpha1.FleetRolledBack) {
			return fu, fleet.Outcome(fu)
		}
		if pickup > 0 && fu.ResourceVersion == first && time.Since(start) > pickup {
			return fu, errNotPickedUp
		}
		select {
		case <-ctx.Done():
			return fu, context.Cause(ctx)
		case <-time.After(poll):
		}
	}
}
