package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// newFleetUpgradeCmds are the FleetUpgrade commands (upgrade, approve,
// rollback, report).
func newFleetUpgradeCmds(kube *genericclioptions.ConfigFlags, f *fleetFlags) []*cobra.Command {
	return nil
}
