package cli

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// controllerRuns says whether the run goes to a running controller: not for
// a dry run, a drill or a run without the migrate step, which the CLI
// makes itself.
func (u *upgradeRun) controllerRuns(ctx context.Context) (string, bool, error) {
	if u.f.dryRun || u.f.drill || u.f.skipped("migrate") {
		return "", false, nil
	}
	return controller.Running(ctx, u.c.Kube, time.Now())
}

// viaController hands the run to a running meshroll controller instead of
// running the engine here: two engines would only take turns on the
// upgrade's lease. The MeshUpgrade is created with spec.version, so the
// controller installs the target itself; with --wait its status is followed
// with the same live view the foreground run prints.
func (u *upgradeRun) viaController(ctx context.Context, holder string) (*v1alpha1.MeshUpgrade, error) {
	gates, _, err := u.buildGates()
	if err != nil {
		return nil, err
	}
	mu, err := u.spec(ctx, gates)
	if err != nil {
		return nil, err
	}
	mu.Spec.Version = u.version
	store := upgrade.Store{Dynamic: u.c.Dynamic}
	existing, err := store.Get(ctx, mu.Name)
	switch {
	case apierrors.IsNotFound(err):
		if err := store.EnsureCRD(ctx, controlplane.NewApplier(u.c.Dynamic, u.c.Kube.Discovery(), false)); err != nil {
			return nil, err
		}
		if _, err := store.Create(ctx, mu); err != nil {
			return nil, err
		}
		fmt.Fprintf(u.w, "step migrate: MeshUpgrade %s created; the meshroll controller (%s) runs it\n", mu.Name, holder)
	case err != nil:
		return nil, fmt.Errorf("failed to read MeshUpgrade %q: %w", mu.Name, err)
	case !reflect.DeepEqual(existing.Spec.Selection, mu.Spec.Selection) || existing.Spec.To != mu.Spec.To || existing.Spec.From != mu.Spec.From:
		return nil, fmt.Errorf("MeshUpgrade %q already exists with a different spec (phase %s); pick another --name, or roll it back with `meshroll rollback %s`", mu.Name, existing.Status.Phase, mu.Name)
	default:
		fmt.Fprintf(u.w, "step migrate: MeshUpgrade %s exists; the meshroll controller (%s) runs it\n", mu.Name, holder)
	}
	if !u.f.wait {
		fmt.Fprintf(u.w, "follow it with `kubectl get mu %s -w` or `meshroll report %s`\n", mu.Name, mu.Name)
		return nil, nil
	}
	return follow(ctx, store, mu.Name, newLiveView(u.w), time.Second)
}

// follow prints a MeshUpgrade's history and progress as whoever runs it
// records them, until it reaches a final phase; a halt or a rollback is
// returned as upgrade.ErrHalted or upgrade.ErrRolledBack, as from Run.
func follow(ctx context.Context, store upgrade.Store, name string, view *liveView, every time.Duration) (*v1alpha1.MeshUpgrade, error) {
	seen := map[string]bool{}
	for {
		mu, err := store.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("failed to follow MeshUpgrade %q: %w", name, err)
		}
		for _, e := range mu.Status.History {
			key := fmt.Sprint(e.At.Unix(), e.Type, e.Wave, e.Message)
			if !seen[key] {
				seen[key] = true
				view.Event(e)
			}
		}
		mu.Status.Counts = v1alpha1.Tally(mu.Status.Workloads)
		view.Progress(&mu.Status)
		switch mu.Status.Phase {
		case v1alpha1.PhaseSucceeded:
			return mu, nil
		case v1alpha1.PhaseHalted:
			return mu, fmt.Errorf("%w: %s", upgrade.ErrHalted, mu.Status.Message)
		case v1alpha1.PhaseRolledBack:
			return mu, fmt.Errorf("%w: %s", upgrade.ErrRolledBack, mu.Status.Message)
		}
		select {
		case <-ctx.Done():
			return mu, errors.Join(context.Cause(ctx), fmt.Errorf("stopped following MeshUpgrade %q; the controller goes on with it", name))
		case <-time.After(every):
		}
	}
}
