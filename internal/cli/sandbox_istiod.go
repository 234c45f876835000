package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod"
)

// withSandboxIstiod adds `sandbox istiod` to the sandbox command. It is kept
// apart from sandbox.go (and hooked in from root.go).
func withSandboxIstiod(sandboxCmd *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "istiod",
		Short: "The sandbox's real istiods (pilot-discovery built from Istio's module, one per istiod pod)",
		Long: "The sandbox routes its pod addresses to lo and runs, for every istiod pod, a real pilot-discovery\n" +
			"built from Istio's module and bound to the pod's address, so Istio's webhooks are answered by istiod\n" +
			"itself, exactly as its charts render them. `meshroll sandbox up` starts it (needs CAP_NET_ADMIN: run as\n" +
			"root, or `setcap cap_net_admin+ep` the meshroll binary).",
	}
	cmd.AddCommand(newSandboxIstiodBuildCmd(), newSandboxIstiodListCmd(), newSandboxIstiodRunCmd())
	sandboxCmd.AddCommand(cmd)
	return sandboxCmd
}

// newSandboxIstiodRunCmd is the sandbox's istiod runner process; `sandbox up`
// starts it with the port to answer its health check on.
func newSandboxIstiodRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "run",
		Short:  "Run a real istiod for every istiod pod of the sandbox (started by `sandbox up`)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			port, err := strconv.Atoi(os.Getenv(sandbox.EnvRunnerPort))
			if err != nil || port <= 0 {
				return fmt.Errorf("%s is not set: the istiod runner is started by `meshroll sandbox up`", sandbox.EnvRunnerPort)
			}
			dir, err := cmd.Flags().GetString("dir")
			if err != nil {
				return err
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", sandbox.KubeconfigPath(dir))
			if err != nil {
				return fmt.Errorf("failed to load sandbox kubeconfig %q: %w", sandbox.KubeconfigPath(dir), err)
			}
			return istiod.Run(cmd.Context(), cfg, istiod.Options{
				Dir:    dir,
				Addr:   fmt.Sprintf("127.0.0.1:%d", port),
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			})
		},
	}
}

func newSandboxIstiodBuildCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "build [VERSION...]",
		Short: "Build (or find cached) pilot-discovery for Istio releases and print the binaries' paths",
		Long: "Build pilot-discovery from the istio.io/istio module of each release (default: " +
			strings.Join(sandbox.PilotDiscoveryReleases(), ", ") + ", which the tests run),\n" +
			"cached under the user cache directory; `make sandbox-bin` runs it so tests never build cold.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = sandbox.PilotDiscoveryReleases()
			}
			for _, v := range args {
				bin, err := sandbox.EnsurePilotDiscovery(cmd.Context(), v, cmd.ErrOrStderr())
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
}

func newSandboxIstiodListCmd() *cobra.Command {
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the istiod processes the sandbox runs, with their pod, address and readiness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			dir, err := cmd.Flags().GetString("dir")
			if err != nil {
				return err
			}
			st, err := sandbox.Status(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if st.Istiod != sandbox.IstiodReal {
				return fmt.Errorf("the sandbox in %s runs no istiod (%s): start it with `meshroll sandbox up`", st.Dir, st.IstiodNote)
			}
			ins, err := istiod.List(cmd.Context(), "127.0.0.1:"+strconv.Itoa(st.Ports[sandbox.PortRunner]))
			if err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), ins, func(w *tabwriter.Writer) error {
				fmt.Fprintln(w, "POD\tIP\tVERSION\tPID\tREADY\tRESTARTS\tUP\tLOG")
				for _, in := range ins {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%t\t%d\t%s\t%s\n", in.Pod, in.IP, in.Version, in.PID, in.Ready, in.Restarts,
						time.Since(in.Started).Round(time.Second), in.Log)
				}
				return nil
			})
		},
	}
	out.bind(cmd)
	return cmd
}
