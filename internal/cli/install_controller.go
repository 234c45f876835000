package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/charts"
)

func newInstallControllerCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		opts   charts.InstallOptions
		values values.Options
	)
	cmd := &cobra.Command{
		Use:   "install-controller",
		Short: "Install or upgrade the meshroll controller with its Helm chart (embedded in this binary)",
		Long: `install-controller installs the Helm chart charts/meshroll that this binary carries, with the
Helm SDK, as the release meshroll in meshroll-system (created when missing), or upgrades the release
when it exists. The result is an ordinary Helm release: helm list, helm upgrade and helm uninstall
work on it. The chart holds the MeshUpgrade CRDs, the controller Deployment (2 replicas, leader
election), its least-privilege ClusterRole, the revision-assignment webhook and a metrics Service.
--dry-run prints the manifest it would apply and changes nothing.`,
		Example: `  meshroll install-controller --dry-run
  meshroll install-controller --set image.tag=v0.1.0 --set serviceMonitor.enabled=true`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vals, err := values.MergeValues(getter.Providers{})
			if err != nil {
				return fmt.Errorf("invalid values: %w; use -f FILE or --set key=value", err)
			}
			opts.Values = vals
			if opts.Namespace == "" && kube.Namespace != nil {
				opts.Namespace = *kube.Namespace
			}
			if opts.DryRun {
				manifest, err := charts.Render(cmd.Context(), opts)
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), manifest)
				fmt.Fprintln(cmd.ErrOrStderr(), "(dry run) nothing changed")
				return nil
			}
			if _, err := restConfig(kube); err != nil {
				return err
			}
			rel, err := charts.Install(cmd.Context(), kube, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "release %s/%s revision %d: %s (chart %s-%s)\n",
				rel.Namespace, rel.Name, rel.Version, rel.Info.Status, rel.Chart.Name(), rel.Chart.Metadata.Version)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Release, "release", charts.DefaultRelease, "Helm release name")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the manifest (CRDs included) and change nothing")
	fl.StringSliceVarP(&values.ValueFiles, "values", "f", nil, "values file (repeatable), as with helm install -f")
	fl.StringArrayVar(&values.Values, "set", nil, "set a value, e.g. --set replicas=3 (repeatable), as with helm install --set")
	return cmd
}
