package cli

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/fleet"
)

// fleetFlags say where the fleet's members are registered: a fleet file of
// kubeconfig contexts (--fleet), or Secrets in the hub the kubectl flags
// point at.
type fleetFlags struct {
	file        string
	namespace   string
	timeout     time.Duration
	concurrency int
	// cpuprofile writes a pprof CPU profile of the read (the benchmark's
	// look at where a fleet-wide read spends its time).
	cpuprofile string
}

func (f *fleetFlags) bind(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.file, "fleet", "", "fleet file listing member clusters by kubeconfig context (default: member Secrets in the hub the kubeconfig points at)")
	fl.StringVar(&f.namespace, "members-namespace", fleet.DefaultNamespace, "hub namespace of the member Secrets (label "+fleet.LabelCluster+"=<name>, key kubeconfig or value)")
	fl.DurationVar(&f.timeout, "cluster-timeout", 30*time.Second, "time budget of each member cluster; a member that does not answer in time is shown with its error")
	fl.IntVar(&f.concurrency, "concurrency", 16, "member clusters read at once")
	fl.StringVar(&f.cpuprofile, "cpuprofile", "", "write a pprof CPU profile of the member reads to this file")
	_ = fl.MarkHidden("cpuprofile")
}

func (f *fleetFlags) validate() error {
	if f.timeout <= 0 {
		return fmt.Errorf("invalid --cluster-timeout %s: must be above zero", f.timeout)
	}
	if f.concurrency < 1 {
		return fmt.Errorf("invalid --concurrency %d: must be at least 1", f.concurrency)
	}
	return nil
}

// members loads the fleet's clusters from the file or the hub.
func (f *fleetFlags) members(ctx context.Context, kube *genericclioptions.ConfigFlags) ([]fleet.Cluster, error) {
	if f.file != "" {
		return fleet.LoadFile(f.file)
	}
	hub, err := hubClient(ctx, kube)
	if err != nil {
		return nil, fmt.Errorf("%w (or list the members in a file with --fleet)", err)
	}
	return fleet.LoadSecrets(ctx, hub, f.namespace)
}

func hubClient(ctx context.Context, kube *genericclioptions.ConfigFlags) (kubernetes.Interface, error) {
	ic, err := clusterClients(ctx, kube)
	if err != nil {
		return nil, err
	}
	return ic.Kube, nil
}

func newFleetCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &fleetFlags{}
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "See and upgrade many clusters at once, in stages",
	}
	f.bind(cmd)
	cmd.AddCommand(newFleetStatusCmd(kube, f), newFleetCheckCmd(kube, f))
	cmd.AddCommand(newFleetUpgradeCmds(kube, f)...)
	return cmd
}

// fleetStatusView is what `fleet status -o json|yaml` prints.
type fleetStatusView struct {
	Clusters []fleet.ClusterStatus `json:"clusters"`
}

// collect reads every member; a member's failure is its row, never the
// command's.
func (f *fleetFlags) collect(cmd *cobra.Command, kube *genericclioptions.ConfigFlags) ([]fleet.ClusterStatus, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	members, err := f.members(cmd.Context(), kube)
	if err != nil {
		return nil, err
	}
	if f.cpuprofile != "" {
		pf, err := os.Create(f.cpuprofile)
		if err != nil {
			return nil, fmt.Errorf("failed to create CPU profile %q: %w", f.cpuprofile, err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return nil, fmt.Errorf("failed to start CPU profile %q: %w", f.cpuprofile, err)
		}
		defer pprof.StopCPUProfile()
	}
	return fleet.Collect(cmd.Context(), members, fleet.ReadCluster,
		fleet.ReadOptions{Timeout: f.timeout, Concurrency: f.concurrency, Now: time.Now()}), nil
}

// fleetReadCmd builds a read-only fleet command: -o validated before any
// cluster is read, then every member read, then shown.
func fleetReadCmd(kube *genericclioptions.ConfigFlags, f *fleetFlags, cmd *cobra.Command,
	show func(cmd *cobra.Command, out *outputFlag, rows []fleet.ClusterStatus) error) *cobra.Command {
	out := &outputFlag{}
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		rows, err := f.collect(cmd, kube)
		if err != nil {
			return err
		}
		return show(cmd, out, rows)
	}
	out.bind(cmd)
	return cmd
}

func newFleetStatusCmd(kube *genericclioptions.ConfigFlags, f *fleetFlags) *cobra.Command {
	return fleetReadCmd(kube, f, &cobra.Command{
		Use:   "status",
		Short: "One row per member cluster: revisions, proxies by version, skew, findings, active upgrades",
		Example: `  meshroll fleet status --fleet fleet.yaml
  meshroll fleet status -o json    # members from Secrets in the hub (current kubeconfig)`,
	}, func(cmd *cobra.Command, out *outputFlag, rows []fleet.ClusterStatus) error {
		for i := range rows {
			rows[i].Details = nil
		}
		return out.print(cmd.OutOrStdout(), fleetStatusView{Clusters: rows}, func(w *tabwriter.Writer) error {
			return printFleetStatus(w, rows)
		})
	})
}

func printFleetStatus(w *tabwriter.Writer, rows []fleet.ClusterStatus) error {
	fmt.Fprintln(w, "CLUSTER\tLABELS\tREVISIONS\tPROXIES BY VERSION\tSKEW\tFINDINGS\tACTIVE UPGRADES")
	unreachable := 0
	for _, r := range rows {
		if r.Error != "" {
			unreachable++
			fmt.Fprintf(w, "%s\t%s\terror: %s\t\t\t\t\n", r.Name, labelString(r.Labels), r.Error)
			continue
		}
		var revs, proxies, ups []string
		for _, rv := range r.Revisions {
			s := rv.Name + "=" + dash(rv.Version)
			if !rv.Ready {
				s += "(not ready)"
			}
			revs = append(revs, s)
		}
		for _, p := range r.Proxies {
			proxies = append(proxies, fmt.Sprintf("%s:%d", p.Key, p.Pods))
		}
		for _, u := range r.Upgrades {
			ups = append(ups, fmt.Sprintf("%s(%s)", u.Name, u.Phase))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, labelString(r.Labels), dash(strings.Join(revs, ",")),
			dash(strings.Join(proxies, ",")), r.Skew, severities(r.Findings), dash(strings.Join(ups, ",")))
	}
	fmt.Fprintf(w, "%d cluster(s), %d unreachable\n", len(rows), unreachable)
	return nil
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return dash(strings.Join(parts, ","))
}

func severities(m map[string]int) string {
	var parts []string
	for _, s := range []check.Severity{check.Error, check.Warning, check.Info} {
		if n := m[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// fleetFinding is one finding of one member.
type fleetFinding struct {
	Cluster string `json:"cluster"`
	check.Finding
}

// fleetCheckView is what `fleet check -o json|yaml` prints.
type fleetCheckView struct {
	Findings    []fleetFinding    `json:"findings"`
	Unreachable map[string]string `json:"unreachable,omitempty"`
	ExitCode    int               `json:"exitCode"`
}

func newFleetCheckCmd(kube *genericclioptions.ConfigFlags, f *fleetFlags) *cobra.Command {
	return fleetReadCmd(kube, f, &cobra.Command{
		Use:   "check",
		Short: "Every member's findings in one list (exit 0 clean, 1 warnings or an unreachable member, 2 errors)",
	}, func(cmd *cobra.Command, out *outputFlag, rows []fleet.ClusterStatus) error {
		view := fleetCheckView{Findings: []fleetFinding{}}
		var all []check.Finding
		for _, r := range rows {
			if r.Error != "" {
				if view.Unreachable == nil {
					view.Unreachable = map[string]string{}
				}
				view.Unreachable[r.Name] = r.Error
				continue
			}
			for _, fd := range r.Details {
				view.Findings = append(view.Findings, fleetFinding{Cluster: r.Name, Finding: fd})
				all = append(all, fd)
			}
		}
		view.ExitCode = check.ExitCode(all)
		if len(view.Unreachable) > 0 && view.ExitCode == 0 {
			view.ExitCode = 1 // a member nobody could check is not clean
		}
		if err := out.print(cmd.OutOrStdout(), view, func(w *tabwriter.Writer) error {
			return printFleetFindings(w, view)
		}); err != nil {
			return err
		}
		if view.ExitCode != 0 {
			return &ExitError{Code: view.ExitCode}
		}
		return nil
	})
}

func printFleetFindings(w *tabwriter.Writer, v fleetCheckView) error {
	if len(v.Findings) == 0 {
		fmt.Fprintln(w, "no findings")
	} else {
		fmt.Fprintln(w, "CLUSTER\tCODE\tSEVERITY\tOBJECT\tMESSAGE\tFIX")
		for _, f := range v.Findings {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Cluster, f.Code, f.Severity, f.Object, f.Message, f.Fix)
		}
	}
	names := make([]string, 0, len(v.Unreachable))
	for n := range v.Unreachable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s\tunreachable\t\t\t%s\t\n", n, v.Unreachable[n])
	}
	return nil
}
