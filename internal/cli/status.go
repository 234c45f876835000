package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/inventory"
)

// statusView is what `status -o json|yaml` prints: the whole snapshot plus
// its summary, so scripts need not recount.
type statusView struct {
	Summary  inventory.Summary   `json:"summary"`
	Snapshot *inventory.Snapshot `json:"snapshot"`
}

func newStatusCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var wide bool
	cmd := snapshotCmd(kube, "status", "Show control-plane revisions, tags and which proxies run where",
		func(cmd *cobra.Command, out *outputFlag, snap *inventory.Snapshot) error {
			view := statusView{Summary: snap.Summary(), Snapshot: snap}
			return out.print(cmd.OutOrStdout(), view, func(w *tabwriter.Writer) error {
				if err := printStatus(w, snap, view.Summary, wide); err != nil {
					return err
				}
				return printVMSection(cmd, kube, w)
			})
		})
	cmd.Flags().BoolVar(&wide, "workloads", false, "also list every workload with its revisions and proxy versions")
	return cmd
}

// snapshotCmd builds a read-only command that takes one inventory snapshot
// and shows it: the shape every "look at the mesh" command shares (flags
// validated before the cluster is touched, -o bound once).
func snapshotCmd(kube *genericclioptions.ConfigFlags, use, short string,
	show func(cmd *cobra.Command, out *outputFlag, snap *inventory.Snapshot) error) *cobra.Command {
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			snap, err := readSnapshot(cmd, kube)
			if err != nil {
				return err
			}
			return show(cmd, out, snap)
		},
	}
	out.bind(cmd)
	return cmd
}

func readSnapshot(cmd *cobra.Command, kube *genericclioptions.ConfigFlags) (*inventory.Snapshot, error) {
	clients, err := clusterClients(cmd.Context(), kube)
	if err != nil {
		return nil, err
	}
	return inventory.Read(cmd.Context(), clients, time.Now())
}

func printStatus(w *tabwriter.Writer, s *inventory.Snapshot, sum inventory.Summary, wide bool) error {
	fmt.Fprintln(w, "CONTROL PLANE")
	fmt.Fprintln(w, "REVISION\tVERSION\tREADY\tINJECTOR WEBHOOKS\tTAGS\tPROXY IMAGE")
	for _, r := range s.Revisions {
		tags := strings.Join(r.Tags, ",")
		if r.Default {
			tags = strings.TrimPrefix(tags+",(default injector)", ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", r.Name, dash(r.Version), r.ReadyReplicas, r.DesiredReplicas,
			dash(strings.Join(r.InjectorWebhooks, ",")), dash(tags), dash(r.ProxyImage))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "DATA PLANE BY REVISION")
	printCounts(w, "REVISION", sum.ByRevision)
	fmt.Fprintln(w, "DATA PLANE BY PROXY VERSION")
	printCounts(w, "VERSION", sum.ByVersion)
	if !wide {
		fmt.Fprintf(w, "%d workloads, %d pods in %d namespaces (--workloads lists each workload)\n", len(s.Workloads), s.Pods, len(s.Namespaces))
		return nil
	}
	fmt.Fprintln(w, "WORKLOADS")
	fmt.Fprintln(w, "NAMESPACE\tKIND\tNAME\tREVISIONS\tVERSIONS\tPODS\tRESTARTABLE")
	for i := range s.Workloads {
		wl := &s.Workloads[i]
		var revs, vers []string
		for _, p := range wl.Proxies {
			revs = appendUnique(revs, orNone(p.Revision))
			vers = appendUnique(vers, orNone(p.Version))
		}
		pods, term := wl.Total()
		restart := "yes"
		if !wl.Restartable {
			restart = "no: " + wl.RestartReason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", wl.Namespace, wl.Kind, wl.Name, strings.Join(revs, ","),
			strings.Join(vers, ","), podCount(pods, term), restart)
	}
	return nil
}

func printCounts(w *tabwriter.Writer, key string, counts []inventory.Count) {
	fmt.Fprintf(w, "%s\tNAMESPACES\tWORKLOADS\tPODS\n", key)
	for _, c := range counts {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", orNone(c.Key), c.Namespaces, c.Workloads, c.Pods)
	}
	fmt.Fprintln(w)
}

func podCount(pods, terminated int) string {
	if terminated == 0 {
		return fmt.Sprint(pods)
	}
	return fmt.Sprintf("%d (+%d terminated)", pods, terminated)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(no sidecar)"
	}
	return s
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
