package upgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// This file is the install step, the first of the recorded list: the
// MeshUpgrade exists before the canary control plane's first write, and its
// status says which revision the run installs and whether the run owns it
// (the revision did not exist when the step began). A run killed half way
// through the install is resumed by the next run (the install is
// idempotent) or undone by its rollback, which removes only a revision the
// run owns, never one that was there before it.

// InstallFunc installs the run's target revision. It must be idempotent: a
// resumed run calls it again over whatever a killed one left. It returns a
// summary of what it changed.
type InstallFunc func(ctx context.Context) (summary string, err error)

// Installer runs the install step of a MeshUpgrade; the CLI and the
// controller both call it before the plan is frozen (Start).
type Installer struct {
	Store StatusStore
	Kube  kubernetes.Interface
	// Install writes the revision (controlplane.Install with the run's
	// rendered objects).
	Install InstallFunc
	// Observer, when set, sees the step's history entries.
	Observer Observer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Run takes the install step of the named MeshUpgrade to its end: it decides
// and records (once, before any write) whether the run owns spec.to, then
// installs it unless it is installed and ready already, and records the
// outcome. A step recorded Done or Skipped is not run again.
func (in Installer) Run(ctx context.Context, name, version string) (*v1alpha1.MeshUpgrade, error) {
	mu, err := in.Store.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("failed to get MeshUpgrade %q: %w", name, err)
	}
	if s := mu.Status.Step(v1alpha1.StepInstall); s != nil && s.State != v1alpha1.StepRunning {
		return mu, nil
	}
	if mu.Spec.RollbackRequested || mu.Status.Phase.Final() {
		return mu, fmt.Errorf("MeshUpgrade %q is %s (rollback requested: %v): its install step does not run again; start a new upgrade under another --name",
			name, mu.Status.Phase, mu.Spec.RollbackRequested)
	}
	to := mu.Spec.To
	exists, ready, err := revisionState(ctx, in.Kube, to)
	if err != nil {
		return mu, err
	}
	if mu.Status.Install == nil {
		mu.Status.Install = &v1alpha1.InstallRecord{Revision: to, Version: version, Owned: !exists}
		if ready {
			in.record(mu, v1alpha1.StepDone, fmt.Sprintf("revision %s was already installed and ready; this upgrade does not own it", to))
			return in.Store.UpdateStatus(ctx, mu)
		}
		msg := fmt.Sprintf("installing revision %s from Istio %s", to, version)
		if exists {
			msg += " over what was there before this upgrade (not owned: its rollback keeps the revision)"
		}
		in.record(mu, v1alpha1.StepRunning, msg)
		// Intent before write: a kill from here on leaves a record that
		// resume and rollback read.
		if mu, err = in.Store.UpdateStatus(ctx, mu); err != nil {
			return nil, fmt.Errorf("failed to record the intent to install revision %q: %w", to, err)
		}
	}
	if ready {
		// Resumed after a kill that came once the install had written
		// everything: the revision this run owns is up, nothing to write.
		in.record(mu, v1alpha1.StepDone, fmt.Sprintf("revision %s (Istio %s) installed and ready", to, mu.Status.Install.Version))
		return in.Store.UpdateStatus(ctx, mu)
	}
	summary, err := in.Install(ctx)
	if err != nil {
		return mu, fmt.Errorf("failed to install revision %q: %w (rerun the same command to resume, or `meshroll rollback %s` to remove what it installed)", to, err, name)
	}
	in.record(mu, v1alpha1.StepDone, fmt.Sprintf("revision %s (Istio %s) installed: %s", to, mu.Status.Install.Version, summary))
	return in.Store.UpdateStatus(ctx, mu)
}

// record sets the install step's state with a history entry.
func (in Installer) record(mu *v1alpha1.MeshUpgrade, state v1alpha1.StepState, msg string) {
	now := time.Now()
	if in.Now != nil {
		now = in.Now()
	}
	e := recordStep(&mu.Status, v1alpha1.StepInstall, state, msg, metav1.NewTime(now))
	if in.Observer != nil {
		in.Observer.Event(e)
	}
}

// revisionState reports whether revision rev exists at all (its install
// record or its istiod Deployment: a killed install leaves either) and
// whether its istiod is ready.
func revisionState(ctx context.Context, kube kubernetes.Interface, rev string) (exists, ready bool, err error) {
	_, found, err := controlplane.ReadRecord(ctx, kube, istio.SystemNamespace, rev)
	if err != nil {
		return false, false, err
	}
	d, err := kube.AppsV1().Deployments(istio.SystemNamespace).Get(ctx, "istiod-"+rev, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, d.Status.ReadyReplicas > 0, nil
	case apierrors.IsNotFound(err):
		return found, false, nil
	}
	return false, false, fmt.Errorf("failed to get istiod of revision %q: %w", rev, err)
}

// uninstall is the install step backwards, the rollback's last step: a
// revision this run installed (Owned) is removed once nothing references it,
// with the gateway colours the run created for it. One that existed before
// the run is never touched. A revision still referenced (by another
// MeshUpgrade, a pod, a namespace, a tag…) is kept and the record says by
// what; that does not fail the rollback, whose workloads are all back.
func (r *run) uninstall(ctx context.Context) error {
	in := r.mu.Status.Install
	if in == nil || !in.Owned || in.Removed {
		return nil
	}
	if r.RemoveRevision == nil {
		return fmt.Errorf("failed to remove revision %q this upgrade installed: no revision remover configured", in.Revision)
	}
	if users := r.otherUsers(ctx, in.Revision); len(users) > 0 {
		r.setStep(v1alpha1.StepInstall, v1alpha1.StepReverted, fmt.Sprintf("revision %s kept although this upgrade installed it: MeshUpgrade %s use(s) it; remove it with `meshroll revision remove %s` once they are done",
			in.Revision, strings.Join(users, ", "), in.Revision))
		return r.flush(ctx, true)
	}
	for _, g := range r.mu.Status.Gateways {
		if r.Gateways == nil {
			break
		}
		if err := r.Gateways.RemoveColour(ctx, g.Namespace, g.Name, g.To); err != nil {
			return fmt.Errorf("failed to remove colour %s of gateway %s/%s: %w", g.To, g.Namespace, g.Name, err)
		}
	}
	err := r.RemoveRevision(ctx, in.Revision)
	var inUse *controlplane.InUseError
	var gone *controlplane.NotInstalledError
	switch {
	case err == nil, errors.As(err, &gone):
		in.Removed = true
		r.setStep(v1alpha1.StepInstall, v1alpha1.StepReverted, fmt.Sprintf("revision %s, which this upgrade installed, removed", in.Revision))
	case errors.As(err, &inUse):
		refs := make([]string, 0, len(inUse.Referrers))
		for _, ref := range inUse.Referrers {
			refs = append(refs, ref.String())
		}
		r.setStep(v1alpha1.StepInstall, v1alpha1.StepReverted, fmt.Sprintf("revision %s kept although this upgrade installed it: still referenced by %s; clear them, then `meshroll revision remove %s`",
			in.Revision, strings.Join(refs[:min(3, len(refs))], "; "), in.Revision))
	default:
		return fmt.Errorf("failed to remove revision %q this upgrade installed: %w", in.Revision, err)
	}
	return r.flush(ctx, true)
}

// otherUsers names the MeshUpgrades other than this one, not rolled back,
// that move workloads from or to rev: removing it would strand them. A
// failed read counts as a user (never remove on an error).
func (r *run) otherUsers(ctx context.Context, rev string) []string {
	lister, ok := r.Store.(Lister)
	if !ok {
		return nil
	}
	all, err := lister.List(ctx)
	if err != nil {
		return []string{"(unknown: " + err.Error() + ")"}
	}
	var out []string
	for _, o := range all {
		if o.Name != r.mu.Name && o.Status.Phase != v1alpha1.PhaseRolledBack && (o.Spec.From == rev || o.Spec.To == rev) {
			out = append(out, o.Name)
		}
	}
	return out
}
