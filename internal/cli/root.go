// Package cli is meshroll's command line: cobra commands that parse flags,
// call the domain packages and print. No business logic lives here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// ExitError carries a specific process exit code (check's 1 = warnings,
// 2 = errors) up to Main without printing anything more.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs meshroll with args and returns the process exit code. Errors are
// printed once, to stderr, as "error: <message>".
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintf(stderr, "error: %v\n", exit.Err)
		}
		return exit.Code
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}

// NewRoot builds the command tree. Each call builds fresh flag state, so tests
// can run commands side by side.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	kube := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:           "meshroll",
		Short:         "Zero-downtime Istio upgrades, from one cluster to a fleet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	kube.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newVersionCmd(),
		withSandboxIstiod(newSandboxCmd()),
		newStatusCmd(kube),
		newCheckCmd(kube),
		newDemoCmd(),
		newManifestCmd(kube),
		newPlanCmd(kube),
		newGatewayCmd(kube),
		newRevisionCmd(kube),
		newTagCmd(kube),
		newUpgradeCmd(kube),
		newRollbackCmd(kube),
		newControllerCmd(kube),
		newReportCmd(kube),
		newWebhookCmd(kube),
		newInstallControllerCmd(kube),
		newFleetCmd(kube),
		newVMCmd(kube),
		newAppCmd(kube),
	)
	return root
}
