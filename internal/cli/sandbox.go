package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshroll/meshroll/sandbox"
)

// sandboxOptions binds the flags shared by the sandbox commands.
type sandboxOptions struct {
	dir   string
	nodes int
}

func (o *sandboxOptions) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&o.dir, "dir", sandbox.DefaultDir(), "sandbox state directory (certs, data, logs)")
}

// upOptions starts the sandbox with `meshroll sandbox istiod run` as its
// istiod runner process: a real istiod for every istiod pod, answering
// Istio's webhooks as rendered.
func (o *sandboxOptions) upOptions(cmd *cobra.Command) (sandbox.Options, error) {
	exe, err := os.Executable()
	if err != nil {
		return sandbox.Options{}, fmt.Errorf("failed to locate the meshroll binary for the sandbox's istiod runner: %w", err)
	}
	return sandbox.Options{
		Dir:    o.dir,
		Nodes:  o.nodes,
		Out:    cmd.ErrOrStderr(),
		Runner: []string{exe, "sandbox", "istiod", "run", "--dir", o.dir},
	}, nil
}

func newSandboxCmd() *cobra.Command {
	o := &sandboxOptions{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a real local Kubernetes control plane (kube-apiserver, etcd, kwok) and real istiod on 127.0.0.1",
	}
	o.bind(cmd)
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the sandbox (a no-op when it already runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.upOptions(cmd)
			if err != nil {
				return err
			}
			st, err := sandbox.Up(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sandbox ready: %d nodes; export KUBECONFIG=%s\n", st.NodesReady, st.Kubeconfig)
			return nil
		},
	}
	up.Flags().IntVar(&o.nodes, "nodes", 3, "number of fake (kwok) nodes")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every sandbox process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sandbox.Down(cmd.Context(), o.dir); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "sandbox stopped")
			return nil
		},
	}
	out := &outputFlag{}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show which sandbox processes run and where",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			st, err := sandbox.Status(cmd.Context(), o.dir)
			if err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), st, func(w *tabwriter.Writer) error { return printSandboxStatus(w, st) })
		},
	}
	out.bind(status)
	kubeconfig := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of the sandbox's admin kubeconfig",
		Long:  "Print the path of the sandbox's admin kubeconfig, so that `export KUBECONFIG=$(meshroll sandbox kubeconfig)` works.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := sandbox.KubeconfigPath(o.dir)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no sandbox kubeconfig at %s: start the sandbox with `meshroll sandbox up`", path)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), path)
			return err
		},
	}
	var withIstioctl bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build (or find cached) the sandbox's component binaries and print their directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := sandbox.EnsureBinaries(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if _, err = fmt.Fprintln(cmd.OutOrStdout(), dir); err != nil || !withIstioctl {
				return err
			}
			for _, v := range sandbox.IstioctlReleases() {
				bin, err := sandbox.EnsureIstioctl(cmd.Context(), v, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), bin); err != nil {
					return err
				}
			}
			return nil
		},
	}
	build.Flags().BoolVar(&withIstioctl, "istioctl", false,
		"also build istioctl "+strings.Join(sandbox.IstioctlReleases(), " and ")+" from Istio's module (the parity tests run them)")
	cmd.AddCommand(up, down, status, kubeconfig, build)
	return cmd
}

func printSandboxStatus(w *tabwriter.Writer, st *sandbox.State) error {
	health := "healthy"
	if !st.Healthy {
		health = "NOT healthy (run `meshroll sandbox up` to restart what is missing)"
	}
	fmt.Fprintf(w, "sandbox %s: %s, %d/%d nodes ready\nkubeconfig: %s\n\n", st.Dir, health, st.NodesReady, st.Nodes, st.Kubeconfig)
	fmt.Fprintln(w, "PROCESS\tPID\tRUNNING\tHEALTHY\tLOG")
	for _, p := range st.Processes {
		fmt.Fprintf(w, "%s\t%d\t%t\t%t\t%s\n", p.Name, p.PID, p.Running, p.Healthy, p.Log)
	}
	return nil
}
