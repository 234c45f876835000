package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// preflightCheck is one named preflight check and its verdict.
type preflightCheck struct {
	name string
	err  error
}

// preflight makes every check `meshroll upgrade` can make before its first
// write: the install's render, validation and version path, the gates
// against their backends, the report file, the ordering and exclusion
// flags, and the planner's own selection and refusals. The selection is
// planned against the snapshot with the target revision assumed installed
// when the install step will install it, so a refusal never comes after the
// canary install or a gateway flip. All checks run, so a dry run (which
// prints each verdict) shows every problem at once; the error names them all
// on one line.
func (u *upgradeRun) preflight(ctx context.Context) error {
	var checks []preflightCheck
	add := func(name string, err error) { checks = append(checks, preflightCheck{name: name, err: err}) }

	if u.installs() {
		add("install", u.prepareInstall(ctx))
	}
	gates, runner, gerr := u.buildGates()
	add("gates", gerr)
	if gerr == nil {
		add("gate backends", u.validateGates(ctx, gates, runner))
	}
	add("report", checkReportPath(u.f.report))
	if !u.f.skipped("migrate") {
		nsl, err := upgrade.NamespaceLabels(ctx, u.c.Kube)
		if err != nil {
			return err
		}
		add("ordering", errors.Join(
			flagErr("--first", upgrade.CheckOrdering(u.f.first, nsl)),
			flagErr("--last", upgrade.CheckOrdering(u.f.last, nsl))))
		add("exclusions", flagErr("--exclude-workload", upgrade.CheckExcluded(u.f.excludeWL, u.snap)))
		add("selection", u.planSelection(ctx, gates, nsl))
	}

	var failed []string
	for _, c := range checks {
		if c.err == nil {
			if u.f.dryRun {
				fmt.Fprintf(u.w, "(dry run) check %s: ok\n", c.name)
			}
			continue
		}
		msg := strings.ReplaceAll(c.err.Error(), "\n", "; ")
		if u.f.dryRun {
			fmt.Fprintf(u.w, "(dry run) check %s: FAILED: %s\n", c.name, msg)
		}
		failed = append(failed, msg)
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return errors.New(failed[0])
	}
	return fmt.Errorf("%d checks failed, nothing was changed: %s", len(failed), strings.Join(failed, "; "))
}

// installs reports whether the install step will install the target.
func (u *upgradeRun) installs() bool {
	r := u.snap.Revision(u.to)
	return !u.f.skipped("install") && (r == nil || r.ReadyReplicas == 0)
}

// prepareInstall renders, validates and path-checks the target revision,
// keeping the objects for the install step.
func (u *upgradeRun) prepareInstall(ctx context.Context) error {
	objs, opts, err := u.f.render.render(ctx)
	if err != nil {
		return err
	}
	if err := validateRendered(u.w, objs); err != nil {
		return err
	}
	if err := checkInstallPath(u.cmd, u.c, opts.Version, false, ""); err != nil {
		return err
	}
	u.rendered, u.renderOpts = objs, opts
	return nil
}

// buildGates turns the gate flags into gates and the runner that evaluates
// them.
func (u *upgradeRun) buildGates() ([]v1alpha1.Gate, *gate.Runner, error) {
	gates, err := buildGates(u.f.gates, u.f.probe)
	if err != nil {
		return nil, nil, err
	}
	runner, err := gate.NewRunner(u.f.promURL)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid --prometheus %q: %w", u.f.promURL, err)
	}
	return gates, runner, nil
}

// validateGates checks every gate against its backend: a Prometheus query
// must run on the server.
func (u *upgradeRun) validateGates(ctx context.Context, gates []v1alpha1.Gate, runner *gate.Runner) error {
	var errs []error
	for _, g := range gates {
		if err := runner.Validate(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// planSelection plans the migration as the migrate step will, without
// writing: on the snapshot with the target assumed installed when the
// install step will install it.
func (u *upgradeRun) planSelection(ctx context.Context, gates []v1alpha1.Gate, nsl map[string]map[string]string) error {
	mu, err := u.spec(ctx, gates)
	if err != nil {
		return err
	}
	store := upgrade.Store{Dynamic: u.c.Dynamic, DryRun: true}
	vms, err := inventory.ReadVMs(ctx, u.c.Dynamic)
	if err != nil {
		return err
	}
	planned, err := upgrade.Start(ctx, mu, upgrade.StartOptions{
		Store: store, Applier: controlplane.NewApplier(u.c.Dynamic, u.c.Kube.Discovery(), true),
		Snapshot: u.plannedSnapshot(), NamespaceLabels: nsl, Now: u.now, VMs: vms,
	})
	if err == nil {
		u.planned = planned
	}
	return err
}

// plannedSnapshot is the snapshot as the migrate step will see it: when the
// install step will install the target, the target answers its own revision
// label with its release's proxy image; nothing else changes.
func (u *upgradeRun) plannedSnapshot() *inventory.Snapshot {
	if u.snap.Revision(u.to) != nil || u.f.skipped("install") {
		return u.snap
	}
	s := *u.snap
	s.Revisions = append(slices.Clone(s.Revisions), inventory.Revision{
		Name: u.to, Version: u.version, InjectorWebhooks: []string{controlplane.InjectorName(u.to)},
		ProxyImage: "docker.io/istio/proxyv2:" + u.version,
	})
	return &s
}

// checkReportPath refuses a --report the run could not write at its end:
// the file is opened for writing (created and removed again when it did not
// exist).
func checkReportPath(path string) error {
	if path == "" {
		return nil
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("invalid --report: %w", err)
	}
	_ = f.Close()
	if os.IsNotExist(statErr) {
		_ = os.Remove(path)
	}
	return nil
}

// flagErr prefixes a check's error with the flag it is about.
func flagErr(flag string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("invalid %s: %s", flag, strings.ReplaceAll(err.Error(), "\n", "; "))
}
