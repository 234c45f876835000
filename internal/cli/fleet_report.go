package cli

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/internal/report"
)

func newFleetReportCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	out := &outputFlag{}
	var html string
	cmd := &cobra.Command{
		Use:   "report UPGRADE",
		Short: "What a FleetUpgrade did: stages, clusters, gate evidence, why it halted (--html for one self-contained page)",
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
			if html != "" {
				return writeFleetReport(html, fu)
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
	cmd.Flags().StringVar(&html, "html", "", "write the HTML report (clusters × stages timeline, revision mix, gate evidence) to this file")
	return cmd
}

func writeFleetReport(path string, fu *v1alpha1.FleetUpgrade) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("failed to write report %s: %w", path, err)
	}
	if err := report.FleetHTML(f, fu, time.Now()); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
