package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/fleet"
)

func newFleetApproveCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "approve UPGRADE STAGE",
		Short: "Let a stage that waits for approval start (refused for a stage not reached yet)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := executorClients(ctx, kube)
			if err != nil {
				return err
			}
			store := fleet.Store{Dynamic: c.Dynamic, DryRun: dryRun}
			fu, err := store.Get(ctx, args[0])
			if err != nil {
				return fmt.Errorf("failed to get FleetUpgrade %q: %w (list them with `kubectl get fleetupgrades`)", args[0], err)
			}
			if err := fleet.Approve(fu, args[1]); err != nil {
				return err
			}
			// The resourceVersion makes the write fail rather than drop an
			// approval written meanwhile (spec.approved is replaced whole).
			patch, err := json.Marshal(map[string]any{
				"metadata": map[string]any{"resourceVersion": fu.ResourceVersion},
				"spec":     map[string]any{"approved": append(slices.Clone(fu.Spec.Approved), args[1])},
			})
			if err != nil {
				return err
			}
			if _, err := store.Patch(ctx, fu.Name, patch); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%sstage %s of FleetUpgrade %s approved\n", dryRunPrefix(dryRun), args[1], fu.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the approval and send it as a server-side dry run")
	return cmd
}

func newFleetRollbackCmd(kube *genericclioptions.ConfigFlags, f *fleetFlags) *cobra.Command {
	var dryRun bool
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "rollback UPGRADE",
		Short: "Roll back every member a FleetUpgrade upgraded, newest first",
		Long: `fleet rollback sets the FleetUpgrade's spec.rollbackRequested and runs the engine in the foreground:
every cluster the run touched (succeeded, soaking, in flight, or halted without having rolled itself
back) is rolled back with its member's own ` + "`meshroll rollback fleet-<upgrade>`" + `, one at a time, in the
reverse of the order they were upgraded. Rerun it to resume.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			if err := f.validate(); err != nil {
				return err
			}
			c, _, err := executorClients(ctx, kube)
			if err != nil {
				return err
			}
			store := fleet.Store{Dynamic: c.Dynamic}
			fu, err := store.Get(ctx, args[0])
			if err != nil {
				return fmt.Errorf("failed to get FleetUpgrade %q: %w (list them with `kubectl get fleetupgrades`)", args[0], err)
			}
			members, err := f.members(ctx, kube)
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintf(w, "(dry run) FleetUpgrade %s would roll back, in this order:\n", fu.Name)
				for _, name := range fleet.RollbackOrder(&fu.Status) {
					fmt.Fprintf(w, "  %s\n", name)
				}
				fmt.Fprintln(w, "(dry run) nothing changed")
				return nil
			}
			if !fu.Spec.RollbackRequested {
				if _, err := store.Patch(ctx, fu.Name, []byte(`{"spec":{"rollbackRequested":true}}`)); err != nil {
					return err
				}
			}
			err = runFleetEngine(cmd, c, f, members, fu.Name, poll)
			var exit *ExitError
			if errors.As(err, &exit) && errors.Is(err, fleet.ErrRolledBack) {
				fmt.Fprintf(w, "FleetUpgrade %s rolled back\n", fu.Name)
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the clusters that would roll back, in order, and change nothing")
	cmd.Flags().DurationVar(&poll, "poll", 2*time.Second, "time between two looks at the members")
	_ = cmd.Flags().MarkHidden("poll")
	return cmd
}
