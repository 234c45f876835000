package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
)

// demoOptions binds `meshroll demo`'s flags.
type demoOptions struct {
	sandbox    sandboxOptions
	version    string
	namespaces int
	workloads  int
	upgradeTo  string
	keep       bool
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
	cmd.Flags().BoolVar(&o.keep, "keep", false, "reuse the sandbox's existing cluster state instead of starting from an empty one")
	cmd.Flags().StringVar(&o.upgradeTo, "upgrade-to", "1.24.2", "finish with `meshroll upgrade --to` this release (\"\" to stop after seeding)")
	return cmd
}

func (o *demoOptions) run(ctx context.Context, cmd *cobra.Command) error {
	log := cmd.ErrOrStderr()
	if _, err := istio.LookupRelease(o.version); err != nil {
		return err
	}
	if !o.keep {
		// A demo tells the same story every time: the previous run left the
		// mesh upgraded, so start from an empty cluster.
		if err := sandbox.Purge(ctx, o.sandbox.dir); err != nil {
			return err
		}
	}
	step(log, "starting the sandbox in %s", o.sandbox.dir)
	upOpts, err := o.sandbox.upOptions(cmd)
	if err != nil {
		return err
	}
	st, err := sandbox.Up(ctx, upOpts)
	if err != nil {
		return err
	}
	// The sandbox runs a real istiod for each revision, built from Istio's
	// module on first use (minutes cold): build it here, where the wait is
	// explained, not inside an install's readiness timeout.
	for _, v := range []string{o.version, o.upgradeTo} {
		if v == "" {
			continue
		}
		step(log, "istiod %s: pilot-discovery from Istio's module (cached after the first build)", v)
		if _, err := sandbox.EnsurePilotDiscovery(ctx, v, log); err != nil {
			return err
		}
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
	plan, err := demo.Mesh(ctx, controlplane.Clients{Kube: kc, Dynamic: dc}, demo.MeshOptions{
		Version: o.version, Namespaces: o.namespaces, Workloads: o.workloads, Log: log,
	})
	if err != nil {
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
	step(log, "seeded %d workloads in %d namespaces; meshroll status:", len(plan.Workloads), len(plan.Namespaces))
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if err := printStatus(w, snap, snap.Summary(), false); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	self := "meshroll"
	if _, err := exec.LookPath(self); err != nil {
		if exe, err := os.Executable(); err == nil {
			self = exe
		}
	}
	if o.upgradeTo != "" {
		if err := o.upgrade(ctx, cmd, plan, st.Kubeconfig, filepath.Join(o.sandbox.dir, "upgrade-report.html")); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "\nNext: export KUBECONFIG=%s\n      %s status --workloads; %s check; %s report <upgrade>; %s plan --to 1.26.1\n",
		st.Kubeconfig, self, self, self, self)
	return nil
}

// upgrade ends the demo with the whole upgrade flow on the seeded mesh. The
// namespace planted with both injection labels is excluded: upgrade refuses
// it, and the demo shows that refusal in `meshroll check` instead.
func (o *demoOptions) upgrade(ctx context.Context, cmd *cobra.Command, plan *demo.Plan, kubeconfig, report string) error {
	args := []string{"upgrade", "--kubeconfig", kubeconfig, "--to", o.upgradeTo,
		"--waves", "1,10%,50%,100%", "--parallelism", "20", "--report", report}
	for _, ns := range plan.Namespaces {
		if ns.Style == demo.StyleBothLabels {
			args = append(args, "--exclude-namespace", ns.Name)
		}
	}
	step(cmd.ErrOrStderr(), "meshroll upgrade %s", strings.Join(args[4:], " "))
	root := NewRoot(cmd.OutOrStdout(), cmd.ErrOrStderr())
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return fmt.Errorf("demo upgrade: %w", err)
	}
	step(cmd.ErrOrStderr(), "upgrade report written to %s (open it in a browser)", report)
	return nil
}

func step(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "==> "+format+"\n", args...)
}
