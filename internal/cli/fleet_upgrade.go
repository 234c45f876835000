package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// newFleetUpgradeCmds are the FleetUpgrade commands (upgrade, approve,
// rollback, report).
func newFleetUpgradeCmds(kube *genericclioptions.ConfigFlags, f *fleetFlags) []*cobra.Command {
	return []*cobra.Command{newFleetUpgradeCmd(kube, f), newFleetApproveCmd(kube), newFleetRollbackCmd(kube, f), newFleetReportCmd(kube)}
}

// fleetUpgradeFlags bind `fleet upgrade`'s flags; -f takes a whole
// FleetUpgrade from a file (the spec as kept in Git) instead.
type fleetUpgradeFlags struct {
	file, version, name, canary, unreachable string
	stages, approval                         []string
	stageSoak, clusterSoak, deadline         time.Duration
	maxConcurrent, maxFailed                 int
	member                                   v1alpha1.MemberStrategy
	memberRollback                           string
	dryRun                                   bool
	poll                                     time.Duration
}

func (u *fleetUpgradeFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&u.file, "filename", "f", "", "FleetUpgrade manifest (YAML) to run instead of the flags")
	fl.StringVar(&u.version, "to", "", "Istio release every member upgrades to, e.g. 1.24.2")
	fl.StringVar(&u.name, "name", "", "FleetUpgrade name (default fleet-to-<version>); rerunning with the same name resumes")
	fl.StringArrayVar(&u.stages, "stage", nil, `stage in order, "NAME=SELECTOR" over cluster labels, e.g. --stage testing=env=testing --stage prod='env in (prod)' (repeatable)`)
	fl.StringVar(&u.canary, "canary", "", "label selector of the canary clusters: first in their stage, alone, and their stage must come first")
	fl.StringSliceVar(&u.approval, "require-approval", nil, "stages that wait for `meshroll fleet approve <upgrade> <stage>`")
	fl.DurationVar(&u.stageSoak, "stage-soak", 0, "soak after each stage: gates must hold this long before the next stage")
	fl.DurationVar(&u.clusterSoak, "cluster-soak", 0, "soak after each cluster's upgrade before it counts as done")
	fl.DurationVar(&u.deadline, "progress-deadline", fleet.DefaultProgressDeadline, "fail a cluster whose upgrade has not finished this long after it started")
	fl.IntVar(&u.maxConcurrent, "max-concurrent", 1, "clusters of a stage upgraded at once")
	fl.IntVar(&u.maxFailed, "max-failed-clusters", 0, "failure budget: failed clusters tolerated before the rollout halts")
	fl.StringVar(&u.unreachable, "unreachable", "wait", "a member unreachable mid-upgrade: wait (until the progress deadline) or halt")
	fl.StringVar(&u.member.Waves, "waves", "", "each member's wave sizes (default as `meshroll upgrade`)")
	fl.IntVar(&u.member.Parallelism, "parallelism", 0, "each member's workloads restarted at once (default as `meshroll upgrade`)")
	fl.DurationVar(&u.member.Bake.Duration, "bake", 0, "each member's soak after every wave")
	fl.DurationVar(&u.member.RolloutTimeout.Duration, "rollout-timeout", 0, "each member's no-progress deadline of a workload rollout")
	fl.StringArrayVar(&u.member.Gates, "gate", nil, "gate of each member's waves against its Prometheus (the meshroll.io/prometheus annotation of its Secret)")
	fl.StringVar(&u.memberRollback, "member-rollback", "auto", "a failed member: auto (roll its workloads back) or manual (halt it)")
	fl.BoolVar(&u.dryRun, "dry-run", false, "validate and print the plan; touch neither the hub nor a member")
	fl.DurationVar(&u.poll, "poll", 2*time.Second, "time between two looks at the members")
	_ = fl.MarkHidden("poll")
}

// upgrade builds the FleetUpgrade from -f or the flags.
func (u *fleetUpgradeFlags) upgrade() (*v1alpha1.FleetUpgrade, error) {
	if u.file != "" {
		b, err := os.ReadFile(u.file)
		if err != nil {
			return nil, fmt.Errorf("failed to read FleetUpgrade file %q: %w", u.file, err)
		}
		fu := &v1alpha1.FleetUpgrade{}
		if err := yaml.UnmarshalStrict(b, fu); err != nil {
			return nil, fmt.Errorf("failed to parse FleetUpgrade file %q: %w", u.file, err)
		}
		if fu.Name == "" {
			return nil, fmt.Errorf("FleetUpgrade file %q has no metadata.name", u.file)
		}
		return fu, u.validateVersion(fu.Spec.Version)
	}
	if err := u.validateVersion(u.version); err != nil {
		return nil, err
	}
	if len(u.stages) == 0 {
		return nil, fmt.Errorf("no stage: pass --stage NAME=SELECTOR once per stage, in order (e.g. --stage testing=env=testing --stage prod=env=prod)")
	}
	spec := v1alpha1.FleetUpgradeSpec{Version: u.version, MaxConcurrent: u.maxConcurrent, MaxFailedClusters: u.maxFailed,
		ClusterSoak: metav1.Duration{Duration: u.clusterSoak}, ProgressDeadline: metav1.Duration{Duration: u.deadline}, Member: u.member}
	switch u.unreachable {
	case "wait":
		spec.Unreachable = v1alpha1.UnreachableWait
	case "halt":
		spec.Unreachable = v1alpha1.UnreachableHalt
	default:
		return nil, fmt.Errorf("invalid --unreachable %q: use wait or halt", u.unreachable)
	}
	switch u.memberRollback {
	case "auto":
		spec.Member.Rollback = v1alpha1.RollbackAuto
	case "manual":
		spec.Member.Rollback = v1alpha1.RollbackManual
	default:
		return nil, fmt.Errorf("invalid --member-rollback %q: use auto or manual", u.memberRollback)
	}
	if u.canary != "" {
		sel, err := metav1.ParseToLabelSelector(u.canary)
		if err != nil {
			return nil, fmt.Errorf("invalid --canary %q: %w", u.canary, err)
		}
		spec.Canary = sel
	}
	needApproval := map[string]bool{}
	for _, a := range u.approval {
		needApproval[a] = true
	}
	for _, s := range u.stages {
		name, selector, ok := strings.Cut(s, "=")
		if !ok || name == "" || selector == "" {
			return nil, fmt.Errorf("invalid --stage %q: use NAME=SELECTOR, e.g. --stage prod=env=prod", s)
		}
		sel, err := metav1.ParseToLabelSelector(selector)
		if err != nil {
			return nil, fmt.Errorf("invalid --stage %q selector: %w", s, err)
		}
		spec.Stages = append(spec.Stages, v1alpha1.FleetStage{Name: name, Selector: *sel,
			Soak: metav1.Duration{Duration: u.stageSoak}, RequireApproval: needApproval[name]})
		delete(needApproval, name)
	}
	for a := range needApproval {
		return nil, fmt.Errorf("invalid --require-approval %q: no --stage has that name", a)
	}
	name := u.name
	if name == "" {
		name = "fleet-to-" + istio.RevisionName(u.version)
	}
	return &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, nil
}

func (u *fleetUpgradeFlags) validateVersion(v string) error {
	if v == "" {
		return fmt.Errorf("--to is required, e.g. --to 1.24.2")
	}
	if _, err := istio.LookupRelease(v); err != nil {
		return fmt.Errorf("invalid version %q: %w", v, err)
	}
	return nil
}

func newFleetUpgradeCmd(kube *genericclioptions.ConfigFlags, f *fleetFlags) *cobra.Command {
	u := &fleetUpgradeFlags{}
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade every member in ordered stages (canaries first, soak, approvals, halt on failure)",
		Long: `fleet upgrade records a FleetUpgrade in the hub (the cluster the kubeconfig points at) and runs it in
the foreground: stage after stage, each member's own MeshUpgrade (named fleet-<upgrade>) is run in the
member as ` + "`meshroll upgrade`" + ` runs it (install the target revision, gated waves, tags), canary clusters
first and alone, at most --max-concurrent at once; every cluster then soaks (its MeshUpgrade succeeded,
every Deployment ready) and every stage soaks before the next; a stage in --require-approval waits for
` + "`meshroll fleet approve`" + `. A failed cluster rolls back per --member-rollback and halts promotion once
more than --max-failed-clusters failed: no cluster of a later stage is touched. Kill it and rerun the
same command: it resumes from the FleetUpgrade's status.
Exit codes: 0 done; 1 refused or interrupted (rerun to resume); 3 halted or rolled back.`,
		Example: `  meshroll fleet upgrade --to 1.24.2 --stage testing=env=testing --stage dev=env=dev \
    --stage prod=env=prod --canary tier=canary --stage-soak 10m --require-approval prod --dry-run
  meshroll fleet upgrade -f fleetupgrade.yaml --fleet fleet.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			fu, err := u.upgrade()
			if err != nil {
				return err
			}
			return runFleetUpgrade(cmd, kube, f, u, fu)
		},
	}
	u.bind(cmd)
	return cmd
}

func runFleetUpgrade(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, f *fleetFlags, u *fleetUpgradeFlags, fu *v1alpha1.FleetUpgrade) error {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	members, err := f.members(ctx, kube)
	if err != nil {
		return err
	}
	plan, _, err := fleet.Freeze(fu.Spec, members, fu.Name)
	if err != nil {
		return err
	}
	if u.dryRun {
		fmt.Fprintf(w, "(dry run) FleetUpgrade %s to %s: %d cluster(s)\n", fu.Name, fu.Spec.Version, len(plan))
		printFleetPlan(w, fu, plan)
		fmt.Fprintln(w, "(dry run) nothing changed")
		return nil
	}
	c, _, err := executorClients(ctx, kube)
	if err != nil {
		return err
	}
	store := fleet.Store{Dynamic: c.Dynamic}
	fu, err = fleet.Start(ctx, store, controlplane.NewApplier(c.Dynamic, c.Kube.Discovery(), false), fu, members)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "FleetUpgrade %s to %s: %d cluster(s) in %d stage(s)\n", fu.Name, fu.Spec.Version, len(plan), len(fu.Spec.Stages))
	return runFleetEngine(cmd, c, f, members, fu.Name, u.poll)
}

// runFleetEngine runs the engine in the foreground with the member runs'
// output prefixed by their cluster on stderr.
func runFleetEngine(cmd *cobra.Command, c controlplane.Clients, f *fleetFlags, members []fleet.Cluster, name string, poll time.Duration) error {
	w := cmd.OutOrStdout()
	// The engine's Lease lives in the members namespace, which a hub whose
	// members come from a fleet file may not have yet.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.namespace}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(cmd.Context(), ns, metav1.CreateOptions{FieldManager: "meshroll"}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %q in the hub for the engine's lease: %w", f.namespace, err)
	}
	e := &fleet.Engine{Store: fleet.Store{Dynamic: c.Dynamic}, Clusters: members, Poll: poll, Log: w,
		Driver: memberDriver{log: cmd.ErrOrStderr()},
		Lease: &upgrade.Lease{Kube: c.Kube, Namespace: f.namespace, Holder: upgrade.LocalHolder(),
			Duration: 15 * time.Second, Alive: upgrade.LocalAlive}}
	fu, err := runOrFollow(cmd, c, e, name, poll)
	if fu != nil {
		printFleetClusters(w, fu)
	}
	if errors.Is(err, fleet.ErrHalted) || errors.Is(err, fleet.ErrRolledBack) {
		return &ExitError{Code: 3, Err: err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "FleetUpgrade %s done: %s\n", fu.Name, fu.Status.Message)
	return nil
}

// runOrFollow runs the engine here, or follows the FleetUpgrade while
// another engine runs it: the hub's `meshroll controller` (whose leader
// Lease says it runs), or whoever holds the FleetUpgrade's own Lease. A
// controller that records nothing within 30 s does not reconcile
// FleetUpgrades, and the run happens here after all.
func runOrFollow(cmd *cobra.Command, c controlplane.Clients, e *fleet.Engine, name string, poll time.Duration) (*v1alpha1.FleetUpgrade, error) {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	if holder, ok, err := controller.Running(ctx, c.Kube, time.Now()); err != nil {
		return nil, err
	} else if ok {
		fmt.Fprintf(w, "the meshroll controller (%s) runs FleetUpgrade %s in the hub; following it (Ctrl-C stops following, not the run)\n", holder, name)
		fu, err := followFleetUpgrade(ctx, w, e.Store, name, poll, 30*time.Second)
		if !errors.Is(err, errNotPickedUp) {
			return fu, err
		}
		fmt.Fprintf(w, "the controller recorded nothing for FleetUpgrade %s in 30s (it may run with --no-fleet): running it here\n", name)
	}
	fu, err := e.Run(ctx, name)
	var held *upgrade.HeldError
	if errors.As(err, &held) {
		fmt.Fprintf(w, "FleetUpgrade %s is being run by %s; following it\n", name, held.Holder)
		return followFleetUpgrade(ctx, w, e.Store, name, poll, 0)
	}
	return fu, err
}

func printFleetPlan(w io.Writer, fu *v1alpha1.FleetUpgrade, plan []v1alpha1.FleetClusterStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tSTAGE\tCLUSTER\tCANARY\tAPPROVAL\tSTAGE SOAK")
	for i, c := range plan {
		var st v1alpha1.FleetStage
		for _, s := range fu.Spec.Stages {
			if s.Name == c.Stage {
				st = s
			}
		}
		appr := "-"
		if st.RequireApproval {
			appr = "required"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%t\t%s\t%s\n", i+1, c.Stage, c.Name, c.Canary, appr, st.Soak.Duration)
	}
	_ = tw.Flush()
}

func printFleetClusters(w io.Writer, fu *v1alpha1.FleetUpgrade) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "FleetUpgrade %s: %s: %s\n", fu.Name, fu.Status.Phase, fu.Status.Message)
	fmt.Fprintln(tw, "STAGE\tCLUSTER\tSTATE\tMEMBER PHASE\tMESSAGE")
	for _, c := range fu.Status.Clusters {
		msg := c.Message
		if c.Unreachable != "" {
			msg = "unreachable: " + c.Unreachable
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Stage, c.Name, c.State, dash(string(c.MemberPhase)), dash(msg))
	}
	_ = tw.Flush()
}
