package cli

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gateway"
	"github.com/meshroll/meshroll/internal/inventory"
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

// switcher is the gateway executor of the run: colours render from the
// run's chart source.
func (u *upgradeRun) switcher() *gateway.Switcher {
	return &gateway.Switcher{Clients: gateway.Clients{Kube: u.c.Kube, Dynamic: u.c.Dynamic}, Source: u.source, Cache: u.cache}
}

// removeRevision is the prune step's executor: it reads the cluster again,
// so controlplane.Remove refuses while anything (pods, pod templates,
// namespaces, tags, gateways, webhooks) still references rev.
func (u *upgradeRun) removeRevision(ctx context.Context, rev string) error {
	snap, err := inventory.Read(ctx, u.ic, time.Now())
	if err != nil {
		return err
	}
	res, err := controlplane.Remove(ctx, u.c, snap, controlplane.RemoveOptions{Revision: rev})
	if err != nil {
		return err
	}
	fmt.Fprintf(u.w, "step prune: revision %s removed (%d objects)\n", rev, len(res.Deleted))
	return nil
}

// withoutMigration runs the gateways, tags and prune steps of a run whose
// migrate step is skipped: there is no MeshUpgrade, so nothing is recorded
// and nothing can be rolled back by `meshroll rollback`.
func (u *upgradeRun) withoutMigration(ctx context.Context) error {
	if !u.f.skipped("gateways") {
		sw := u.switcher()
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
			if err := setTag(ctx, u.c, u.cache, u.source, t.Name, u.to); err != nil {
				return err
			}
			fmt.Fprintf(u.w, "step tags: %s → %s\n", t.Name, u.to)
		}
	}
	if u.f.prune && !u.f.skipped("prune") {
		if err := u.removeRevision(ctx, u.from); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}
