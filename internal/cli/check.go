package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/inventory"
)

// checkView is what `check -o json|yaml` prints.
type checkView struct {
	Findings []check.Finding `json:"findings"`
	ExitCode int             `json:"exitCode"`
}

func newCheckCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	return snapshotCmd(kube, "check", "Find mesh problems that would hurt an upgrade (exit 0 clean, 1 warnings, 2 errors)",
		func(cmd *cobra.Command, out *outputFlag, snap *inventory.Snapshot) error {
			findings := vmFindings(cmd, kube, snap, check.Run(snap))
			view := checkView{Findings: findings, ExitCode: check.ExitCode(findings)}
			if err := out.print(cmd.OutOrStdout(), view, func(w *tabwriter.Writer) error {
				return printFindings(w, findings)
			}); err != nil {
				return err
			}
			if view.ExitCode != 0 {
				return &ExitError{Code: view.ExitCode}
			}
			return nil
		})
}

func printFindings(w *tabwriter.Writer, findings []check.Finding) error {
	if len(findings) == 0 {
		_, err := fmt.Fprintln(w, "no findings")
		return err
	}
	fmt.Fprintln(w, "CODE\tSEVERITY\tOBJECT\tMESSAGE\tFIX")
	for _, f := range findings {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", f.Code, f.Severity, f.Object, f.Message, f.Fix)
	}
	return nil
}
