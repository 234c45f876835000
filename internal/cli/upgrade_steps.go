package cli

import (
	"context"
	"fmt"

	"github.com/meshroll/meshroll/internal/upgrade"
)

// The gateways, tags and prune steps are recorded steps of the MeshUpgrade
// (internal/upgrade): the CLI only hands the engine the executors that do
// their writes. Without the migrate step there is no MeshUpgrade to record
// them in, so withoutMigration runs them in the foreground, unrecorded.

// withoutMigration runs the gateways, tags and prune steps of a run whose
// migrate step is skipped: there is no MeshUpgrade, so nothing is recorded
// and nothing can be rolled back by `meshroll rollback`.
func (u *upgradeRun) withoutMigration(ctx context.Context) error {
	if !u.f.skipped("gateways") {
		sw := u.executors().Switcher()
		live, err := sw.List(ctx)
		if err != nil {
			return err
		}
		flips := upgrade.GatewayFlips(live, u.from, u.to)
		for _, g := range flips {
			if err := sw.Switch(ctx, g.Namespace, g.Name, g.To); err != nil {
				return err
			}
			fmt.Fprintf(u.w, "step gateways: %s/%s now selects %s (was %s)\n", g.Namespace, g.Name, g.To, g.From)
		}
		if len(flips) == 0 {
			fmt.Fprintf(u.w, "step gateways: no meshroll gateway serves %s\n", u.from)
		}
	}
	if !u.f.skipped("tags") {
		for _, t := range u.snap.Tags {
			if t.Revision != u.from {
				continue
			}
			if err := u.executors().MoveTag(ctx, t.Name, u.to); err != nil {
				return err
			}
			fmt.Fprintf(u.w, "step tags: %s → %s\n", t.Name, u.to)
		}
	}
	if u.f.prune && !u.f.skipped("prune") {
		if err := u.executors().RemoveRevision(ctx, u.from); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}
