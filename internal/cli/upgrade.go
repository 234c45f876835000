package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/gateway"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/report"
	"github.com/meshroll/meshroll/internal/upgrade"
)

func newUpgradeCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &upgradeFlags{}
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade the mesh: canary control plane, gateways, gated data-plane waves, tags, prune",
		Long: `upgrade runs the whole flow as one list of steps recorded in a MeshUpgrade, each resumable
and skippable (--skip; a skipped step is recorded Skipped, so resume and rollback see it):
  install   install the target revision beside the running one (canary control plane); recorded
            before its first write, so ` + "`meshroll rollback`" + ` removes a revision this upgrade
            installed (never one that was there before)
  gateways  blue/green: a new colour of every meshroll gateway, then flip its Service
  migrate   move workloads in waves, each (the last included) followed by readiness, gates and
            --bake; a MeshUpgrade records progress, rerun to resume
  tags      point every revision tag that names the old revision at the new one
  prune     with --prune, remove the old revision once nothing references it (after the last bake)
Every check (flags, gates against Prometheus, the selection and the planner's refusals, the install's
render and version path, the report file) is made before the first write; --dry-run prints each.
Exit codes: 0 done; 1 refused, or interrupted (rerun the same command to resume); 3 the run halted or
rolled back (the report says why).`,
		Example: `  meshroll upgrade --to 1.24.2 --dry-run
  meshroll upgrade --to 1.24.2 --waves 1,10%,100% --parallelism 20 --gate error-rate --prometheus http://127.0.0.1:9090
  meshroll upgrade --to 1.24.2 --drill --report drill.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			return runUpgrade(cmd, kube, f)
		},
	}
	f.bind(cmd)
	return cmd
}

// upgradeRun carries what the steps of one upgrade share.
type upgradeRun struct {
	cmd     *cobra.Command
	w       io.Writer
	f       *upgradeFlags
	c       controlplane.Clients
	ic      inventory.Clients
	snap    *inventory.Snapshot
	from    string
	to      string
	version string
	// cache renders each release once per run, for tag moves and gateways;
	// source is where every render of the run finds its charts (--charts,
	// --repo; nil is the Go module), so an air-gapped run never falls back
	// to a download half way through.
	cache  *istio.RenderCache
	source istio.ChartSource
	// rendered and renderOpts are the target's objects, rendered and
	// validated by the preflight for the install step.
	rendered   []*unstructured.Unstructured
	renderOpts istio.RenderOptions
	// planned is the MeshUpgrade the preflight planned (nil when migrate
	// is skipped); now is the run's start.
	planned *v1alpha1.MeshUpgrade
	now     time.Time
}

func runUpgrade(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, f *upgradeFlags) error {
	ctx := cmd.Context()
	c, ic, err := executorClients(ctx, kube)
	if err != nil {
		return err
	}
	snap, err := inventory.Read(ctx, ic, time.Now())
	if err != nil {
		return err
	}
	// More than one safe hop away: the planner's hops, one after another.
	if ch, err := planChain(ctx, upgrade.Store{Dynamic: c.Dynamic}, f, snap); err != nil || ch != nil {
		if err != nil {
			return err
		}
		return runChain(cmd, kube, f, upgrade.Store{Dynamic: c.Dynamic}, ch)
	}
	opts, err := f.render.options()
	if err != nil {
		return err
	}
	u := &upgradeRun{cmd: cmd, w: cmd.OutOrStdout(), f: f, c: c, ic: ic, snap: snap, version: f.render.version,
		cache: renderCache(), source: opts.Source, now: time.Now()}
	u.to = f.render.revision
	if u.to == "" {
		u.to = istio.RevisionName(u.version)
	}
	if u.from, err = sourceRevision(snap, f.from, u.to); err != nil {
		return err
	}
	prefix := dryRunPrefix(f.dryRun)
	fmt.Fprintf(u.w, "%supgrade %s → %s (%s)\n", prefix, u.from, u.to, u.version)
	if err := u.preflight(ctx); err != nil {
		return err
	}
	// Where a controller runs, it installs (spec.version) and migrates.
	holder, viaCtl, err := u.controllerRuns(ctx)
	if err != nil {
		return err
	}
	if f.dryRun {
		if !f.skipped("install") && !viaCtl {
			if err := u.install(ctx); err != nil {
				return err
			}
		}
		return u.dryRunMigration()
	}
	// The install, gateways, waves, tags and prune steps are one recorded
	// list run by the engine (a skipped one is recorded Skipped); a
	// rollback or a halt flips the gateways back itself, and a rollback
	// removes the revision the install step installed.
	stopProbe := u.watchProbe(ctx)
	var mu *v1alpha1.MeshUpgrade
	if viaCtl {
		if mu, err = u.viaController(ctx, holder); mu == nil && err == nil {
			return nil // handed over, not followed (--wait=false)
		}
	} else {
		mu, err = u.migrate(ctx)
	}
	if mu != nil && f.report != "" {
		if rerr := writeReport(f.report, mu, stopProbe()); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			fmt.Fprintf(u.w, "report: %s\n", f.report)
		}
	}
	if err != nil {
		if errors.Is(err, upgrade.ErrRolledBack) || errors.Is(err, upgrade.ErrHalted) {
			return &ExitError{Code: 3, Err: err}
		}
		return err
	}
	if f.drill {
		return u.drill(ctx, mu)
	}
	printSkipped(u.w, mu)
	if s := mu.Status.Step(v1alpha1.StepPrune); s != nil && s.State == v1alpha1.StepRefused {
		return fmt.Errorf("prune: %s", s.Message)
	}
	fmt.Fprintf(u.w, "upgrade %s → %s done\n", u.from, u.to)
	return nil
}

// sourceRevision picks the revision to migrate from: the flag, or the one
// revision other than the target that runs proxies.
func sourceRevision(s *inventory.Snapshot, flag, to string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	running := map[string]bool{}
	for _, w := range s.Workloads {
		for _, p := range w.Proxies {
			if p.Pods > 0 && p.Revision != "" && p.Revision != to {
				running[p.Revision] = true
			}
		}
	}
	revs := make([]string, 0, len(running))
	for r := range running {
		revs = append(revs, r)
	}
	slices.Sort(revs)
	switch len(revs) {
	case 0:
		return "", fmt.Errorf("no proxy runs a revision other than %s: nothing to migrate (pass --from to force a source revision)", to)
	case 1:
		return revs[0], nil
	}
	return "", fmt.Errorf("proxies run %d revisions besides %s (%s); pick one with --from", len(revs), to, strings.Join(revs, ", "))
}

// install is the dry run's install step: it shows what the install would
// write (a real run takes the recorded step, recordedInstall).
func (u *upgradeRun) install(ctx context.Context) error {
	if !u.installs() {
		fmt.Fprintf(u.w, "%sstep install: revision %s already installed and ready\n", dryRunPrefix(u.f.dryRun), u.to)
		return nil
	}
	summary, err := u.installFunc()(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(u.w, "%sstep install: revision %s (%s): %s\n", dryRunPrefix(u.f.dryRun), u.to, u.version, summary)
	return nil
}

// installFunc installs the target from the objects the preflight rendered,
// validated and path-checked.
func (u *upgradeRun) installFunc() upgrade.InstallFunc {
	return func(ctx context.Context) (string, error) {
		if u.rendered == nil {
			return "", fmt.Errorf("failed to install revision %q: it was not rendered (it was installed and ready when the run began); rerun the same command", u.to)
		}
		start := time.Now()
		res, err := controlplane.Install(ctx, u.c, controlplane.InstallOptions{Render: u.renderOpts, Objects: u.rendered, DryRun: u.f.dryRun})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s in %s", controlplane.Summarize(res.Changes), time.Since(start).Round(time.Millisecond)), nil
	}
}

// recordedInstall is the install step of the recorded list: the
// MeshUpgrade exists (upgrade.Create) and records whether this run owns the
// target before the first install write, so a kill mid-install is resumed
// by a rerun or undone by `meshroll rollback`.
func (u *upgradeRun) recordedInstall(ctx context.Context, store upgrade.Store, mu *v1alpha1.MeshUpgrade) error {
	in := upgrade.Installer{Store: store, Kube: u.c.Kube, Install: u.installFunc()}
	done, err := in.Run(ctx, mu.Name, u.version)
	if err != nil {
		return err
	}
	if s := done.Status.Step(v1alpha1.StepInstall); s != nil {
		fmt.Fprintf(u.w, "step install: %s\n", s.Message)
	}
	// The target's injector and proxy image are part of every later
	// decision: read the cluster again.
	u.snap, err = inventory.Read(ctx, u.ic, time.Now())
	return err
}

// spec builds the MeshUpgrade for the run.
func (u *upgradeRun) spec(ctx context.Context, gates []v1alpha1.Gate) (*v1alpha1.MeshUpgrade, error) {
	colours, err := u.gatewayWorkloads(ctx)
	if err != nil {
		return nil, err
	}
	spec, err := u.f.spec(u.from, u.to, gates, colours)
	if err != nil {
		return nil, err
	}
	spec.FlipGateways = !u.f.skipped("gateways")
	spec.MoveTags = !u.f.skipped("tags")
	spec.Prune = u.f.prune && !u.f.skipped("prune")
	spec.SkipMigrate = u.f.skipped("migrate")
	if spec.Strategy.Parallelism == 0 && u.planned != nil {
		// The MeshUpgrade is created before it is planned (the install
		// step records in it): take what the preflight's plan chose.
		spec.Strategy.Parallelism = u.planned.Spec.Strategy.Parallelism
	}
	name := u.f.name
	if name == "" {
		name = u.from + "-to-" + u.to
	}
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if u.f.hop != nil {
		mu.Labels, mu.Annotations = u.f.hop.meta()
	}
	return mu, nil
}

// gatewayWorkloads are meshroll's blue/green gateway colours: the gateways
// step moves them by flipping Services, never by restarting them.
func (u *upgradeRun) gatewayWorkloads(ctx context.Context) ([]string, error) {
	list, err := u.c.Kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: gateway.LabelGateway})
	if err != nil {
		return nil, fmt.Errorf("failed to list gateway colours: %w", err)
	}
	out := make([]string, 0, len(list.Items))
	for _, d := range list.Items {
		// Only the old colour can be a candidate; listing just it keeps the
		// spec identical when a rerun finds the new colour installed.
		if d.Name == gateway.DeploymentName(d.Labels[gateway.LabelGateway], u.from) {
			out = append(out, "Deployment "+d.Namespace+"/"+d.Name)
		}
	}
	return out, nil
}

// start validates and records the MeshUpgrade (or finds it, to resume).
func (u *upgradeRun) start(ctx context.Context, store upgrade.Store) (*v1alpha1.MeshUpgrade, *gate.Runner, error) {
	gates, runner, err := u.buildGates()
	if err != nil {
		return nil, nil, err
	}
	mu, err := u.spec(ctx, gates)
	if err != nil {
		return nil, nil, err
	}
	opts := upgrade.StartOptions{Store: store, Applier: controlplane.NewApplier(u.c.Dynamic, u.c.Kube.Discovery(), store.DryRun),
		ValidateGate: runner.Validate, Now: u.now}
	if !u.f.skipped("install") {
		created, err := upgrade.Create(ctx, mu, opts)
		if err != nil {
			return nil, nil, err
		}
		if err := u.recordedInstall(ctx, store, created); err != nil {
			return nil, nil, err
		}
	}
	nsl, err := upgrade.NamespaceLabels(ctx, u.c.Kube)
	if err != nil {
		return nil, nil, err
	}
	vms, err := inventory.ReadVMs(ctx, u.c.Dynamic) // VMs of --from move in the same waves
	if err != nil {
		return nil, nil, err
	}
	opts.Snapshot, opts.NamespaceLabels, opts.VMs = u.snap, nsl, vms
	mu, err = upgrade.Start(ctx, mu, opts)
	return mu, runner, err
}

// dryRunMigration prints the plan the preflight made.
func (u *upgradeRun) dryRunMigration() error {
	if u.planned == nil {
		fmt.Fprintf(u.w, "(dry run) nothing changed\n")
		return nil
	}
	fmt.Fprintf(u.w, "(dry run) step migrate: MeshUpgrade %s would be created\n", u.planned.Name)
	if err := report.Text(u.w, u.planned); err != nil {
		return err
	}
	fmt.Fprintf(u.w, "(dry run) nothing changed\n")
	return nil
}

// migrate records (or resumes) the MeshUpgrade and runs the engine in the
// foreground with the live view.
func (u *upgradeRun) migrate(ctx context.Context) (*v1alpha1.MeshUpgrade, error) {
	store := upgrade.Store{Dynamic: u.c.Dynamic}
	mu, runner, err := u.start(ctx, store)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(u.w, "step migrate: MeshUpgrade %s, %d workload(s) in %d wave(s), parallelism %d\n",
		mu.Name, len(mu.Status.Workloads), mu.Status.Waves, mu.Spec.Strategy.Parallelism)
	if u.f.webhook {
		stop, err := serveAssignments(ctx, u.c.Kube, store, u.cmd.ErrOrStderr())
		if err != nil {
			return mu, err
		}
		defer stop()
	}
	return u.engine(store, runner).Run(ctx, mu.Name)
}

// executors are the run's writers: they render from the run's chart source.
func (u *upgradeRun) executors() upgrade.Executors {
	return upgrade.Executors{Clients: u.c, Inventory: u.ic, Cache: u.cache, Source: u.source,
		Removed: func(rev string, n int) { fmt.Fprintf(u.w, "step prune: revision %s removed (%d objects)\n", rev, n) }}
}

// engine builds the engine with the live view.
func (u *upgradeRun) engine(store upgrade.Store, runner *gate.Runner) *upgrade.Engine {
	e := u.executors().Engine(store, runner, u.snap)
	e.Observer = newLiveView(u.w)
	e.Lease = &upgrade.Lease{Kube: u.c.Kube, Namespace: istio.SystemNamespace, Holder: upgrade.LocalHolder(),
		Duration: 15 * time.Second, Alive: upgrade.LocalAlive}
	return e
}

// drill rolls everything back after a successful forward run (gateways
// included: the engine flips back what it recorded).
func (u *upgradeRun) drill(ctx context.Context, mu *v1alpha1.MeshUpgrade) error {
	if mu == nil {
		return fmt.Errorf("--drill needs the migrate step")
	}
	fmt.Fprintf(u.w, "drill: forward run succeeded; rolling back %s\n", mu.Name)
	store := upgrade.Store{Dynamic: u.c.Dynamic}
	if _, err := store.Patch(ctx, mu.Name, []byte(`{"spec":{"rollbackRequested":true}}`)); err != nil {
		return err
	}
	runner, err := gate.NewRunner(u.f.promURL)
	if err != nil {
		return err
	}
	out, err := u.engine(store, runner).Run(ctx, mu.Name)
	if out != nil && u.f.report != "" {
		err = errors.Join(err, writeReport(u.f.report, out, nil))
	}
	if err != nil && !errors.Is(err, upgrade.ErrRolledBack) {
		return err
	}
	fmt.Fprintf(u.w, "drill done: %d workload(s) went to %s and back to %s\n", out.Status.Counts.RolledBack, u.to, u.from)
	return nil
}

// writeReport writes the HTML report, with the probe's series when one ran.
func writeReport(path string, mu *v1alpha1.MeshUpgrade, traffic *report.Traffic) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("failed to write report %s: %w", path, err)
	}
	if err := report.HTMLWithTraffic(f, mu, traffic, time.Now()); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// printSkipped lists the workloads a restart cannot move, with what to do.
func printSkipped(w io.Writer, mu *v1alpha1.MeshUpgrade) {
	const shown = 10
	sk := mu.Status.Skipped
	if len(sk) == 0 {
		return
	}
	fmt.Fprintf(w, "%d workload(s) still on %s need manual action:\n", len(sk), mu.Spec.From)
	for _, s := range sk[:min(shown, len(sk))] {
		fmt.Fprintf(w, "  %s %s/%s: %s\n", s.Kind, s.Namespace, s.Name, s.Reason)
	}
	if len(sk) > shown {
		fmt.Fprintf(w, "  … and %d more (meshroll report %s)\n", len(sk)-shown, mu.Name)
	}
}
