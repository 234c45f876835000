package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// chainHops returns the hops of multi-hop upgrade name (the MeshUpgrades
// labelled with its chain), newest first; nil when there are none.
func chainHops(ctx context.Context, store upgrade.Store, name string) ([]v1alpha1.MeshUpgrade, error) {
	all, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	var hops []v1alpha1.MeshUpgrade
	for _, mu := range all {
		if mu.Labels[labelChain] == name {
			hops = append(hops, mu)
		}
	}
	// <chain>-hop<i>: the hop index orders them; newest (highest) first.
	slices.SortFunc(hops, func(a, b v1alpha1.MeshUpgrade) int {
		return hopIndex(b.Name, name) - hopIndex(a.Name, name)
	})
	return hops, nil
}

func hopIndex(hop, chain string) int {
	var i int
	_, _ = fmt.Sscanf(strings.TrimPrefix(hop, chain+"-hop"), "%d", &i)
	return i
}

// rollbackChain rolls back every hop of a multi-hop upgrade, newest first,
// each exactly as `meshroll rollback <hop>` does (a hop already rolled back
// is passed over); it stops at the first hop that cannot be rolled back
// (for instance one whose old revision a hop pruned), whose refusal says why.
func rollbackChain(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, name string, hops []v1alpha1.MeshUpgrade, flags []string) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s is a %d-hop upgrade: rolling its hops back newest first\n", name, len(hops))
	for _, h := range hops {
		if h.Status.Phase == v1alpha1.PhaseRolledBack {
			fmt.Fprintf(w, "hop %s: already rolled back\n", h.Name)
			continue
		}
		fmt.Fprintf(w, "hop %s: %s → %s back to %s\n", h.Name, h.Spec.From, h.Spec.To, h.Spec.From)
		sub := newRollbackCmd(kube)
		sub.SetArgs(append([]string{h.Name}, flags...))
		sub.SetOut(w)
		sub.SetErr(cmd.ErrOrStderr())
		sub.SilenceUsage, sub.SilenceErrors = true, true
		if err := sub.ExecuteContext(cmd.Context()); err != nil {
			return fmt.Errorf("hop %s of %s: %w", h.Name, name, err)
		}
	}
	return nil
}
