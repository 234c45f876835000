package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gateway"
	"github.com/meshroll/meshroll/internal/istio"
)

// newGatewayCmd groups the blue/green ingress gateway commands: install a
// colour per revision, expose them behind one meshroll-owned LoadBalancer
// Service, switch that Service between colours, and show where traffic goes.
func newGatewayCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run ingress gateways blue/green: one Deployment per revision behind a Service meshroll switches",
		Example: `  meshroll gateway install --revision 1-23-2 --name ingress
  meshroll gateway install --revision 1-24-2 --name ingress
  meshroll gateway expose --name ingress --to 1-23-2
  meshroll gateway switch --name ingress --to 1-24-2
  meshroll gateway switch --name ingress --to 1-23-2   # roll back
  meshroll gateway status --name ingress`,
	}
	cmd.AddCommand(newGatewayInstallCmd(kube), newGatewayExposeCmd(kube), newGatewaySwitchCmd(kube), newGatewayStatusCmd(kube))
	return cmd
}

// gatewayFlags are the flags every gateway command shares.
type gatewayFlags struct {
	name, namespace string
}

func (f *gatewayFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "name", "", "gateway name: the name of meshroll's Service; colours are <name>-<revision> (required)")
	cmd.Flags().StringVar(&f.namespace, "namespace", istio.DefaultGatewayNamespace, "namespace of the gateway")
}

func (f *gatewayFlags) validate() error {
	if f.name == "" {
		return fmt.Errorf("--name is required: pass the gateway's name, e.g. --name ingress")
	}
	return nil
}

// gatewayClients builds the typed and dynamic clients the gateway executor
// needs, after proving the API server answers.
func gatewayClients(ctx context.Context, kube *genericclioptions.ConfigFlags) (gateway.Clients, error) {
	c, _, err := executorClients(ctx, kube)
	return gateway.Clients{Kube: c.Kube, Dynamic: c.Dynamic}, err
}

func newGatewayInstallCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &gatewayFlags{}
	var rev, cpNS string
	var dryRun, noCache bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install a revision's colour of a gateway (ClusterIP Service, no traffic until switched to)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if err := istio.ValidateRevision(rev); err != nil || rev == "" {
				return fmt.Errorf("--revision must name an installed revision, e.g. --revision 1-24-2")
			}
			c, err := gatewayClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			opts := gateway.InstallOptions{
				Name: f.name, Namespace: f.namespace, Revision: rev, ControlPlaneNamespace: cpNS,
				DryRun: dryRun, Timeout: timeout,
			}
			if !noCache {
				opts.Cache = renderCache()
			}
			changes, err := gateway.Install(cmd.Context(), c, opts)
			w := cmd.OutOrStdout()
			for _, ch := range changes {
				fmt.Fprintf(w, "%s%s\n", dryRunPrefix(dryRun), ch)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%sgateway %s/%s colour %s installed (%s)\n", dryRunPrefix(dryRun), f.namespace,
				gateway.DeploymentName(f.name, rev), rev, controlplane.Summarize(changes))
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&rev, "revision", "", "installed control-plane revision whose gateway chart to render (required)")
	cmd.Flags().StringVar(&cpNS, "istio-namespace", istio.SystemNamespace, "namespace of the control plane")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "server-side dry run: validate every object, change nothing, do not wait")
	cmd.Flags().BoolVar(&noCache, "no-render-cache", false, "render from the charts even when the same render is cached")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the colour's Deployment to become available")
	return cmd
}

func newGatewayExposeCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &gatewayFlags{}
	var to string
	var ports []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "expose",
		Short: "Create the gateway's LoadBalancer Service, owned by meshroll, selecting one colour",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			opts := gateway.ExposeOptions{Name: f.name, Namespace: f.namespace, To: to, DryRun: dryRun}
			for _, p := range ports {
				port, err := gateway.ParsePort(p)
				if err != nil {
					return err
				}
				opts.Ports = append(opts.Ports, port)
			}
			c, err := gatewayClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			rev, changes, err := gateway.Expose(cmd.Context(), c, opts)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, ch := range changes {
				fmt.Fprintf(w, "%s%s\n", dryRunPrefix(dryRun), ch)
			}
			fmt.Fprintf(w, "%sgateway %s/%s exposed: service selects colour %s\n", dryRunPrefix(dryRun), f.namespace, f.name, rev)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&to, "to", "", "revision of the colour to select (needed when several colours are installed)")
	cmd.Flags().StringArrayVar(&ports, "port", nil, "service port as port[:targetPort], e.g. 80:8080 (repeatable; default 15021, 80, 443)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "server-side dry run: change nothing")
	return cmd
}

func newGatewaySwitchCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &gatewayFlags{}
	var to string
	var dryRun bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "switch",
		Short: "Move all of a gateway's traffic to a fully ready colour in one write (switch back the same way)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if to == "" {
				return fmt.Errorf("--to is required: pass the revision of the colour to move traffic to")
			}
			c, err := gatewayClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			res, err := gateway.Switch(cmd.Context(), c.Kube, gateway.SwitchOptions{
				Name: f.name, Namespace: f.namespace, To: to, DryRun: dryRun, Timeout: timeout,
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !res.Changed {
				fmt.Fprintf(w, "gateway %s/%s already selects colour %s\n", f.namespace, f.name, res.To)
				return nil
			}
			fmt.Fprintf(w, "%sgateway %s/%s switched from %s to %s\n", dryRunPrefix(dryRun), f.namespace, f.name, res.From, res.To)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&to, "to", "", "revision of the colour to move traffic to (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check readiness and send the patch as a server-side dry run: change nothing")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the target colour to be fully ready before refusing")
	return cmd
}

func newGatewayStatusCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &gatewayFlags{}
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a gateway's colours and which one its Service selects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if err := out.validate(); err != nil {
				return err
			}
			c, err := gatewayClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			st, err := gateway.Read(cmd.Context(), c.Kube, f.namespace, f.name)
			if err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), st, func(w *tabwriter.Writer) error {
				printGatewayStatus(w, st)
				return nil
			})
		},
	}
	f.bind(cmd)
	out.bind(cmd)
	return cmd
}

func printGatewayStatus(w *tabwriter.Writer, st *gateway.Status) {
	if st.ServiceType == "" {
		fmt.Fprintf(w, "SERVICE %s/%s: not exposed (meshroll gateway expose --name %s)\n", st.Namespace, st.Name, st.Name)
	} else {
		fmt.Fprintf(w, "SERVICE %s/%s: type %s, selects colour %s\n", st.Namespace, st.Name, st.ServiceType, dash(st.Live))
	}
	fmt.Fprintln(w, "REVISION\tVERSION\tDEPLOYMENT\tREADY\tLIVE")
	for _, c := range st.Colours {
		live := ""
		if c.Revision == st.Live {
			live = "*"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\n", c.Revision, dash(c.Version), c.Deployment, c.ReadyReplicas, c.Desired, live)
	}
}
