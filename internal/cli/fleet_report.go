package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/fleet"
)

func newFleetReportCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "report UPGRADE",
		Short: "What a FleetUpgrade did: stages, clusters, gate evidence, why it halted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, _, err := executorClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			fu, err := fleet.Store{Dynamic: c.Dynamic}.Get(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("failed to get FleetUpgrade %q: %w (list them with `kubectl get fleetupgrades`)", args[0], err)
			}
			return out.print(cmd.OutOrStdout(), fu, func(w *tabwriter.Writer) error {
				printFleetClusters(w, fu)
				fmt.Fprintln(w, "\nHISTORY")
				for _, e := range fu.Status.History {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("15:04:05"), e.Type, e.Stage, e.Cluster, e.Message)
				}
				return nil
			})
		},
	}
	out.bind(cmd)
	return cmd
}
