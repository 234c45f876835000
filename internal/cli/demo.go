package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/injector"
)

// demoOptions binds `meshroll demo`'s flags.
type demoOptions struct {
	sandbox    sandboxOptions
	version    string
	namespaces int
	workloads  int
}

func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the sandbox, install Istio from its real charts, seed a realistic mesh and show its status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd)
		},
	}
	cmd.Flags().StringVar(&o.sandbox.dir, "dir", sandbox.DefaultDir(), "sandbox state directory")
	cmd.Flags().IntVar(&o.sandbox.nodes, "nodes", 5, "number of fake (kwok) nodes")
	cmd.Flags().StringVar(&o.version, "version", "1.23.2", "Istio release to install first")
	cmd.Flags().IntVar(&o.namespaces, "namespaces", 24, "namespaces to seed")
	cmd.Flags().IntVar(&o.workloads, "workloads", 240, "workloads to seed")
	return cmd
}

func (o *demoOptions) run(ctx context.Context, cmd *cobra.Command) error {
	log := cmd.ErrOrStderr()
	if _, err := istio.LookupRelease(o.version); err != nil {
		return err
	}
	rev := istio.RevisionName(o.version)
	step(log, "starting the sandbox in %s", o.sandbox.dir)
	upOpts, err := o.sandbox.upOptions(cmd)
	if err != nil {
		return err
	}
	st, err := sandbox.Up(ctx, upOpts)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", st.Kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to load sandbox kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create kubernetes client: %w", err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create dynamic client: %w", err)
	}
	if err := waitInjector(ctx, kc); err != nil {
		return err
	}
	cp := controlplane.Clients{Kube: kc, Dynamic: dc}
	step(log, "installing Istio %s as revision %s from its Helm charts (CRDs first)", o.version, rev)
	res, err := controlplane.Install(ctx, cp, controlplane.InstallOptions{
		Render: istio.RenderOptions{Version: o.version, Revision: rev, Components: []istio.Component{istio.Base, istio.Istiod}},
	})
	if err != nil {
		return err
	}
	step(log, "revision %s available (%s)", rev, summarizeChanges(res.Changes))
	step(log, "pointing revision tag %q at %s", "default", rev)
	if _, err := controlplane.SetTag(ctx, cp, controlplane.TagOptions{Tag: "default", Revision: rev, Version: o.version}); err != nil {
		return err
	}
	plan, err := demo.Build(demo.Options{Revision: rev, Tag: "default", Namespaces: o.namespaces, Workloads: o.workloads})
	if err != nil {
		return err
	}
	step(log, "seeding %d workloads in %d namespaces", len(plan.Workloads), len(plan.Namespaces))
	if err := demo.Apply(ctx, kc, plan); err != nil {
		return err
	}
	if err := demo.WaitReady(ctx, kc, plan); err != nil {
		return err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create metadata client: %w", err)
	}
	snap, err := inventory.Read(ctx, inventory.Clients{Kube: kc, Meta: mc}, time.Now())
	if err != nil {
		return err
	}
	step(log, "mesh seeded; meshroll status:")
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if err := printStatus(w, snap, snap.Summary(), false); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "\nNext: export KUBECONFIG=%s; meshroll status --workloads; meshroll check\n", st.Kubeconfig)
	return nil
}

// waitInjector waits until the sandbox injector has published its endpoint:
// installing Istio before that would leave webhooks pointing at nothing.
func waitInjector(ctx context.Context, kc kubernetes.Interface) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, found, err := injector.LoadEndpoint(ctx, kc)
		return found && err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for the sandbox injector (see its log under the sandbox dir's logs/): %w", err)
	}
	return nil
}

func step(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "==> "+format+"\n", args...)
}

func summarizeChanges(changes []controlplane.Change) string {
	counts := map[controlplane.Action]int{}
	for _, c := range changes {
		counts[c.Action]++
	}
	return fmt.Sprintf("%d created, %d configured, %d unchanged", counts[controlplane.Created], counts[controlplane.Configured], counts[controlplane.Unchanged])
}
