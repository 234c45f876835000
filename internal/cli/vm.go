package cli

import (
	"context"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// newVMCmd groups the commands for VM proxies run by meshroll-agent.
func newVMCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "VM proxies managed by meshroll-agent: status, upgrade in waves, rollback, onboarding",
	}
	cmd.AddCommand(newVMStatusCmd(kube), newVMUpgradeCmd(kube), newVMRollbackCmd(kube), newVMOnboardCmd(kube))
	return cmd
}

// vmClients is what the vm commands need: the snapshot (installed
// revisions) and a dynamic client for WorkloadEntries.
func vmClients(cmd *cobra.Command, kube *genericclioptions.ConfigFlags) (*inventory.Snapshot, dynamic.Interface, error) {
	snap, err := readSnapshot(cmd, kube)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := restConfig(kube)
	if err != nil {
		return nil, nil, err
	}
	cfg.ContentType = "application/json" // CRDs have no protobuf
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create dynamic client: %w", err)
	}
	return snap, dyn, nil
}

func installedRevisions(s *inventory.Snapshot) []string {
	out := make([]string, 0, len(s.Revisions))
	for _, r := range s.Revisions {
		out = append(out, r.Name)
	}
	return out
}

// vmStatusView is what `vm status -o json|yaml` prints.
type vmStatusView struct {
	Groups   []inventory.VMGroup `json:"groups"`
	VMs      []inventory.VMProxy `json:"vms"`
	Findings []check.Finding     `json:"findings"`
}

func newVMStatusCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	out := &outputFlag{}
	var staleAfter time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "VM proxies by revision and version, with stale VMs and unreachable agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			snap, dyn, err := vmClients(cmd, kube)
			if err != nil {
				return err
			}
			vms, err := inventory.ReadVMs(cmd.Context(), dyn)
			if err != nil {
				return err
			}
			view := vmStatusView{Groups: inventory.GroupVMs(vms), VMs: vms, Findings: check.VMs(vms, snap, time.Now(), staleAfter)}
			if view.VMs == nil {
				view.VMs = []inventory.VMProxy{}
			}
			if err := out.print(cmd.OutOrStdout(), view, func(w *tabwriter.Writer) error { return printVMStatus(w, view) }); err != nil {
				return err
			}
			if code := check.ExitCode(view.Findings); code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	out.bind(cmd)
	cmd.Flags().DurationVar(&staleAfter, "stale-after", 2*time.Minute, "an agent whose last heartbeat is older is unreachable")
	return cmd
}

func printVMStatus(w *tabwriter.Writer, v vmStatusView) error {
	fmt.Fprintln(w, "VM PROXIES BY REVISION")
	fmt.Fprintln(w, "REVISION\tVERSION\tVMS")
	for _, g := range v.Groups {
		fmt.Fprintf(w, "%s\t%s\t%d\n", dash(g.Revision), dash(g.Version), g.VMs)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "VM\tASSIGNED\tRUNNING\tPHASE\tHEARTBEAT\tERROR")
	for _, vm := range v.VMs {
		beat := "never"
		if !vm.Heartbeat.IsZero() {
			beat = time.Since(vm.Heartbeat).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", vm.Ref(), dash(assignmentText(vm.Desired)), dash(assignmentText(vm.Running)),
			dash(string(vm.Phase)), beat, dash(vm.Error))
	}
	if len(v.Findings) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "SEVERITY\tCODE\tOBJECT\tMESSAGE")
		for _, f := range v.Findings {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Severity, f.Code, f.Object, f.Message)
		}
	}
	return w.Flush()
}

func assignmentText(a vmagent.Assignment) string {
	if a.IsZero() {
		return ""
	}
	return a.String()
}

// vmUpgradeFlags bind the flags of `vm upgrade` and `vm rollback`.
type vmUpgradeFlags struct {
	to, revision, from, name, waves, rollback string
	first, last                               []string
	parallelism                               int
	timeout, staleAfter, poll                 time.Duration
	dryRun                                    bool
}

func (f *vmUpgradeFlags) bind(cmd *cobra.Command, forward bool) {
	fl := cmd.Flags()
	if forward {
		fl.StringVar(&f.to, "to", "", "Istio version to move the VMs to, e.g. 1.24.2 (required)")
		fl.StringVar(&f.revision, "revision", "", "revision to assign (default: the version's revision name, 1-24-2)")
		fl.StringVar(&f.from, "from", "", "revision whose VMs move (default: the only other revision the VMs run)")
		fl.StringVar(&f.name, "name", "", "upgrade name recorded on each VM (default: vm-<revision>)")
		fl.StringVar(&f.waves, "waves", "1,10%,100%", "wave sizes: counts or percentages; the last repeats")
		fl.StringSliceVar(&f.first, "first", nil, "namespaces whose VMs move first")
		fl.StringSliceVar(&f.last, "last", nil, "namespaces whose VMs move last")
		fl.StringVar(&f.rollback, "rollback", "auto", "on a failed wave: auto (move every VM of the run back) or manual (halt)")
		fl.BoolVar(&f.dryRun, "dry-run", false, "print the waves, change nothing")
	}
	fl.IntVar(&f.parallelism, "parallelism", 20, "VMs moved at once within a wave")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long one VM may take to report healthy")
	fl.DurationVar(&f.staleAfter, "stale-after", 2*time.Minute, "an agent whose last heartbeat is older is unreachable")
	fl.DurationVar(&f.poll, "poll", time.Second, "how often a VM's WorkloadEntry is reread while waiting")
}

func (f *vmUpgradeFlags) options(vms []inventory.VMProxy, installed []string) (upgrade.VMOptions, error) {
	if f.to == "" {
		return upgrade.VMOptions{}, fmt.Errorf("--to is required: the Istio version to move the VMs to, e.g. --to 1.24.2")
	}
	if f.rollback != "auto" && f.rollback != "manual" {
		return upgrade.VMOptions{}, fmt.Errorf("invalid --rollback %q: use auto or manual", f.rollback)
	}
	rev := f.revision
	if rev == "" {
		rev = istio.RevisionName(f.to)
	}
	to := vmagent.Assignment{Revision: rev, Version: f.to}
	from := f.from
	if from == "" {
		var others []string
		for _, vm := range vms {
			r := vm.Desired.Revision
			if r == "" {
				r = vm.Running.Revision
			}
			if r != "" && r != rev && !slices.Contains(others, r) {
				others = append(others, r)
			}
		}
		if len(others) > 1 {
			return upgrade.VMOptions{}, fmt.Errorf("VMs run several revisions (%v): say which to move with --from", others)
		}
		if len(others) == 1 {
			from = others[0]
		}
	}
	waves, err := parseWaves(f.waves)
	if err != nil {
		return upgrade.VMOptions{}, err
	}
	name := f.name
	if name == "" {
		name = "vm-" + rev
	}
	o := upgrade.VMOptions{Name: name, From: from, To: to, Installed: installed, First: f.first, Last: f.last,
		Parallelism: f.parallelism, Timeout: f.timeout, StaleAfter: f.staleAfter, Rollback: f.rollback == "auto", DryRun: f.dryRun}
	for _, w := range waves {
		o.Waves = append(o.Waves, plan.WaveSize{Count: w.Count, Percent: w.Percent})
	}
	return o, nil
}

func newVMUpgradeCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &vmUpgradeFlags{}
	cmd := &cobra.Command{
		Use:   "upgrade --to VERSION",
		Short: "Move VM proxies to a revision in gated waves; a failed wave moves the run's VMs back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.to == "" {
				return fmt.Errorf("--to is required: the Istio version to move the VMs to, e.g. --to 1.24.2")
			}
			snap, dyn, err := vmClients(cmd, kube)
			if err != nil {
				return err
			}
			return runVMUpgrade(cmd.Context(), cmd, f, snap, dyn)
		},
	}
	f.bind(cmd, true)
	return cmd
}

// runVMUpgrade is `vm upgrade` once the clients exist; `meshroll upgrade`
// runs the same after its pod waves.
func runVMUpgrade(ctx context.Context, cmd *cobra.Command, f *vmUpgradeFlags, snap *inventory.Snapshot, dyn dynamic.Interface) error {
	vms, err := inventory.ReadVMs(ctx, dyn)
	if err != nil {
		return err
	}
	o, err := f.options(vms, installedRevisions(snap))
	if err != nil {
		return err
	}
	o.Event = func(msg string) { fmt.Fprintln(cmd.OutOrStdout(), msg) }
	ex := dataplane.VMExecutor{Dyn: dyn, Poll: f.poll, StaleAfter: f.staleAfter}
	res, err := upgrade.MigrateVMs(ctx, ex, vms, o)
	if err != nil {
		return &ExitError{Code: 3, Err: err}
	}
	verb := "moved"
	if o.DryRun {
		verb = "would move"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %d VM(s) to %s in %d wave(s); %d already there\n", verb, countVMs(res.Waves), o.To, len(res.Waves), len(res.Done))
	return nil
}

func countVMs(waves [][]string) int {
	n := 0
	for _, w := range waves {
		n += len(w)
	}
	return n
}

func newVMRollbackCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &vmUpgradeFlags{}
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Move every VM a vm upgrade moved back to its recorded previous assignment and wait for the agents",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			snap, dyn, err := vmClients(cmd, kube)
			if err != nil {
				return err
			}
			o := upgrade.VMOptions{Name: args[0], Installed: installedRevisions(snap), Parallelism: f.parallelism, Timeout: f.timeout}
			ex := dataplane.VMExecutor{Dyn: dyn, Poll: f.poll, StaleAfter: f.staleAfter}
			if err := upgrade.RollbackVMs(cmd.Context(), ex, o, func(msg string) { fmt.Fprintln(cmd.OutOrStdout(), msg) }); err != nil {
				return &ExitError{Code: 3, Err: err}
			}
			return nil
		},
	}
	f.bind(cmd, false)
	return cmd
}

// readVMProxies reads the VM proxies `status` and `check` show beside pods.
// A cluster without Istio's WorkloadEntry CRD has none.
func readVMProxies(ctx context.Context, kube *genericclioptions.ConfigFlags) ([]inventory.VMProxy, error) {
	cfg, err := restConfig(kube)
	if err != nil {
		return nil, err
	}
	cfg.ContentType = "application/json"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create dynamic client: %w", err)
	}
	return inventory.ReadVMs(ctx, dyn)
}

// vmFindings adds the VM findings to check's; VMs that cannot be read are a
// note on stderr, never a failed check.
func vmFindings(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, snap *inventory.Snapshot, findings []check.Finding) []check.Finding {
	vms, err := readVMProxies(cmd.Context(), kube)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: VM proxies not checked: %v\n", err)
		return findings
	}
	return append(findings, check.VMs(vms, snap, time.Now(), 2*time.Minute)...)
}

// printVMSection appends VM proxies by revision to `status` when there are any.
func printVMSection(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, w *tabwriter.Writer) error {
	vms, err := readVMProxies(cmd.Context(), kube)
	if err != nil {
		fmt.Fprintf(w, "\nVM proxies not read: %v\n", err)
		return w.Flush()
	}
	if len(vms) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "VM PROXIES BY REVISION (meshroll vm status for each VM)")
	fmt.Fprintln(w, "REVISION\tVERSION\tVMS")
	for _, g := range inventory.GroupVMs(vms) {
		fmt.Fprintf(w, "%s\t%s\t%d\n", dash(g.Revision), dash(g.Version), g.VMs)
	}
	return w.Flush()
}
