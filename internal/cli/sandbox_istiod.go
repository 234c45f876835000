package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod"
)

// withSandboxIstiod adds `sandbox istiod` to the sandbox command. It is kept
// apart from sandbox.go (and hooked in from root.go) while that file is being
// reworked; it belongs beside `sandbox up`, where an `--istiod real` flag
// should replace the MESHROLL_SANDBOX_ISTIOD variable.
func withSandboxIstiod(sandboxCmd *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "istiod",
		Short: "Real istiod in the sandbox (opt in with MESHROLL_SANDBOX_ISTIOD=real meshroll sandbox up)",
		Long: "In real-istiod mode the sandbox routes its pod addresses to lo and runs, for every istiod pod, a real\n" +
			"pilot-discovery built from Istio's module and bound to the pod's address, so Istio's webhooks are\n" +
			"answered by istiod itself. Start it with `MESHROLL_SANDBOX_ISTIOD=real meshroll sandbox up` (needs\n" +
			"CAP_NET_ADMIN; without it the sandbox says why and runs the stand-in injector).",
	}
	cmd.AddCommand(newSandboxIstiodBuildCmd(), newSandboxIstiodListCmd())
	sandboxCmd.AddCommand(cmd)
	return sandboxCmd
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
				note := ""
				if st.IstiodNote != "" {
					note = " (" + st.IstiodNote + ")"
				}
				return fmt.Errorf("the sandbox in %s runs the stand-in injector, not real istiod%s: "+
					"start it with `MESHROLL_SANDBOX_ISTIOD=real meshroll sandbox up`", st.Dir, note)
			}
			ins, err := istiod.List(cmd.Context(), "127.0.0.1:"+strconv.Itoa(st.Ports[sandbox.PortInjector]))
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
