package cli

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// The gateways, tags and prune steps are recorded steps of the MeshUpgrade
// (internal/upgrade): the CLI only hands the engine the executors that do
// their writes. Without the migrate step there is no MeshUpgrade to record
// them in, so withoutMigration runs them in the foreground, unrecorded.

// namespaceLabels reads every namespace's labels for selectors and wave
// ordering (the inventory keeps only injection labels).
func namespaceLabels(ctx context.Context, c controlplane.Clients) (map[string]map[string]string, error) {
	list, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list namespaces: %w", err)
	}
	out := make(map[string]map[string]string, len(list.Items))
	for _, ns := range list.Items {
		out[ns.Name] = ns.Labels
	}
	return out, nil
}

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
