package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// recheck is how soon a stalled run looks at the cluster again: a
// revision installed or a permission granted meanwhile needs no edit of
// the MeshUpgrade to be noticed.
const recheck = 30 * time.Second

// stallOn stalls the run, with a Warning event naming the problem.
func (r *Reconciler) stallOn(st *state, reason, msg string) {
	st.stall = &stall{reason: reason, message: msg}
	st.result = ctrl.Result{RequeueAfter: recheck}
	r.event(st.mu, corev1.EventTypeWarning, reason, msg)
}

func (r *Reconciler) event(mu *v1alpha1.MeshUpgrade, typ, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(mu, nil, typ, reason, "Reconcile", "%s", msg)
	}
}

// checkPermissions stalls the run, before any write, while the controller
// lacks a permission Rules lists. The answer is kept for PermissionsEvery.
func (r *Reconciler) checkPermissions(ctx context.Context, st *state) error {
	r.perm.Lock()
	defer r.perm.Unlock()
	every := r.PermissionsEvery
	if every <= 0 {
		every = 5 * time.Minute
	}
	if r.perm.at.IsZero() || len(r.perm.missing) > 0 || time.Since(r.perm.at) > every {
		missing, err := Missing(ctx, r.Clients.Kube, r.CertNamespace)
		if err != nil {
			return err
		}
		r.perm.at, r.perm.missing = time.Now(), missing
	}
	if len(r.perm.missing) > 0 {
		r.stallOn(st, ReasonPermissionMissing, fmt.Sprintf("the controller's ServiceAccount lacks %d permission(s) it needs: %s; grant them (the meshroll chart's ClusterRole lists them all) — nothing was changed",
			len(r.perm.missing), strings.Join(r.perm.missing, ", ")))
	}
	return nil
}

// forbidden stalls the run on a Forbidden answer, naming what the API
// server refused, and has the preflight run again on the next reconcile.
func (r *Reconciler) forbidden(st *state, err error) bool {
	if !apierrors.IsForbidden(err) {
		return false
	}
	r.perm.Lock()
	r.perm.at = time.Time{}
	r.perm.Unlock()
	r.stallOn(st, ReasonPermissionMissing, fmt.Sprintf("the API server refused a request of the controller: %v; grant the permission (the meshroll chart's ClusterRole lists every one needed)", err))
	return true
}

// install installs spec.to from spec.version when it is not installed yet
// and the run is not planned; without a version the run stalls, with no
// write, until the revision exists.
func (r *Reconciler) install(ctx context.Context, st *state) error {
	mu := st.mu
	if mu.Status.Planned() || mu.Spec.RollbackRequested {
		// Planned: the revision was there when it was. Rollback requested
		// before the plan: the engine's rollback undoes the install step.
		return nil
	}
	snap, err := inventory.Read(ctx, r.Inventory, time.Now())
	if err != nil {
		if r.forbidden(st, err) {
			return nil
		}
		return err
	}
	st.snap = snap
	if snap.Revision(mu.Spec.From) == nil {
		r.stallOn(st, ReasonRevisionMissing, fmt.Sprintf("revision %s (spec.from) is not installed: nothing runs on it to migrate; fix spec.from (`meshroll revision list` shows the installed revisions)", mu.Spec.From))
		return nil
	}
	target := mu.Spec.Version
	if rev := snap.Revision(mu.Spec.To); rev != nil && rev.Version != "" {
		target = rev.Version
	}
	if err := checkPath(snap.Revision(mu.Spec.From).Version, target); err != nil {
		r.stallOn(st, ReasonPlanRefused, fmt.Sprintf("%v — nothing was installed or moved", err))
		return nil
	}
	if rev := snap.Revision(mu.Spec.To); rev != nil && rev.ReadyReplicas > 0 {
		return nil
	}
	if mu.Spec.Version == "" {
		r.stallOn(st, ReasonRevisionMissing, fmt.Sprintf("revision %s (spec.to) is not installed and ready, and spec.version is empty: set spec.version to the Istio release to install it from, or install it with `meshroll revision install`", mu.Spec.To))
		return nil
	}
	r.event(mu, corev1.EventTypeNormal, "Install", fmt.Sprintf("installing revision %s from Istio %s", mu.Spec.To, mu.Spec.Version))
	start := time.Now()
	// The engine's install step, the one `meshroll upgrade` runs: whether
	// this run owns spec.to is recorded before the first install write, so
	// a rollback removes what it installed and nothing else.
	in := upgrade.Installer{Store: r.Store, Kube: r.Clients.Kube, Install: func(ctx context.Context) (string, error) {
		res, err := controlplane.Install(ctx, r.Clients, controlplane.InstallOptions{Render: istio.RenderOptions{
			Version: mu.Spec.Version, Revision: mu.Spec.To, Source: r.Source, Cache: r.Cache}})
		if err != nil {
			return "", err
		}
		return controlplane.Summarize(res.Changes), nil
	}}
	fresh, err := in.Run(ctx, mu.Name, mu.Spec.Version)
	if err != nil {
		if r.forbidden(st, err) {
			return nil
		}
		r.stallOn(st, ReasonInstallFailed, fmt.Sprintf("failed to install revision %s from Istio %s: %v", mu.Spec.To, mu.Spec.Version, err))
		return nil
	}
	st.mu = fresh
	msg := ""
	if s := fresh.Status.Step(v1alpha1.StepInstall); s != nil {
		msg = s.Message
	}
	r.event(mu, corev1.EventTypeNormal, "Installed", fmt.Sprintf("%s (%s)", msg, time.Since(start).Round(time.Millisecond)))
	// The target's injector and proxy image are part of the plan: read
	// the cluster again.
	st.snap, err = inventory.Read(ctx, r.Inventory, time.Now())
	return err
}

// plan freezes the wave plan into the status (upgrade.Start, the same the
// CLI calls) when the run has none yet. A refusal (an overlapping
// upgrade, an empty selection, a gate the Prometheus server rejects) is a
// stall, with no write.
func (r *Reconciler) plan(ctx context.Context, st *state) error {
	mu := st.mu
	if mu.Status.Planned() || mu.Spec.RollbackRequested {
		return nil // a rollback needs no plan (the engine undoes the install)
	}
	fresh, err := r.Store.Get(ctx, mu.Name)
	if err != nil {
		return err
	}
	runner, err := gate.NewRunner(fresh.Spec.PrometheusURL)
	if err != nil {
		r.stallOn(st, ReasonPlanRefused, fmt.Sprintf("invalid spec.prometheusURL %q: %v", fresh.Spec.PrometheusURL, err))
		return nil
	}
	nsl, err := upgrade.NamespaceLabels(ctx, r.Clients.Kube)
	if err != nil {
		return err
	}
	// The VMs of spec.from move in the same waves as its pods, as with
	// `meshroll upgrade`: left behind, they would keep From in use and the
	// prune step would wait on them for ever.
	vms, err := inventory.ReadVMs(ctx, r.Clients.Dynamic)
	if err != nil {
		if r.forbidden(st, err) {
			return nil
		}
		return err
	}
	planned, err := upgrade.Start(ctx, fresh, upgrade.StartOptions{Store: r.Store, Snapshot: st.snap, NamespaceLabels: nsl,
		VMs: vms, ValidateGate: runner.Validate, Now: time.Now()})
	if err != nil {
		if r.forbidden(st, err) {
			return nil
		}
		r.stallOn(st, ReasonPlanRefused, fmt.Sprintf("the upgrade cannot be planned: %v", err))
		return nil
	}
	st.mu = planned
	r.event(planned, corev1.EventTypeNormal, "Planned", fmt.Sprintf("%d workload(s) in %d wave(s), parallelism %d",
		len(planned.Status.Workloads), planned.Status.Waves, planned.Spec.Strategy.Parallelism))
	return nil
}

// step takes one Step of the upgrade's session, opened on first need and
// held while its moves are in flight, and turns its typed result into the
// requeue.
func (r *Reconciler) step(ctx context.Context, st *state) error {
	name := st.mu.Name
	sess := r.sessions.get(name)
	if sess == nil {
		var err error
		if sess, err = r.open(ctx, st); err != nil || sess == nil {
			return err
		}
	}
	mu, res, err := sess.Step(st.mu.Generation)
	if err == nil && res.InFlight > 0 {
		r.sessions.put(name, sess)
	} else {
		r.sessions.drop(name)
		sess.Close()
	}
	if mu != nil {
		st.mu = mu
	}
	switch {
	case err != nil && r.forbidden(st, err):
		return nil
	case err != nil:
		return err // recorded so far; requeued with backoff
	}
	st.done = true
	switch {
	case res.Final, res.Paused:
		st.result = ctrl.Result{}
	case res.InFlight > 0:
		// The slice ended with rollouts going on: come back at once, as
		// every slot freed meanwhile waits for the next Step to refill it.
		st.result = ctrl.Result{RequeueAfter: time.Millisecond}
	default:
		st.result = ctrl.Result{RequeueAfter: max(time.Until(res.RequeueAt), 100*time.Millisecond)}
	}
	return nil
}

// open builds the engine (the CLI's, with this controller's observer and
// lease) and opens its session on the upgrade. nil with no error: another
// engine holds the upgrade, and the run comes back once its lease would
// expire, or a Forbidden answer stalled it.
func (r *Reconciler) open(ctx context.Context, st *state) (*upgrade.Session, error) {
	log := ctrl.LoggerFrom(ctx)
	snap := st.snap
	if snap == nil {
		var err error
		if snap, err = inventory.Read(ctx, r.Inventory, time.Now()); err != nil {
			if r.forbidden(st, err) {
				return nil, nil
			}
			return nil, err
		}
	}
	runner, err := gate.NewRunner(st.mu.Spec.PrometheusURL)
	if err != nil {
		return nil, err
	}
	x := upgrade.Executors{Clients: r.Clients, Inventory: r.Inventory, Cache: r.Cache, Source: r.Source,
		Removed: func(rev string, n int) {
			r.event(st.mu, corev1.EventTypeNormal, "Pruned", fmt.Sprintf("revision %s removed (%d objects)", rev, n))
		}}
	e := x.Engine(r.Store, runner, snap)
	e.Observer = newObserver(st.mu, r.Recorder, r.Metrics, log)
	e.Lease = &upgrade.Lease{Kube: r.Clients.Kube, Namespace: istio.SystemNamespace, Holder: r.Identity,
		Duration: r.leaseDuration(), Alive: upgrade.LocalAlive}
	e.Slice = r.slice()
	// The session outlives this reconcile (it keeps the reconcile's
	// logger, not its end); the manager's stop closes it (closeAll).
	sess, err := e.Open(context.WithoutCancel(ctx), st.mu.Name)
	var held *upgrade.HeldError
	switch {
	case errors.As(err, &held):
		// Another engine (a CLI, a controller that lost leadership while
		// stepping) runs it: come back once its lease would expire.
		log.Info("another engine runs the upgrade", "holder", held.Holder)
		st.result = ctrl.Result{RequeueAfter: max(time.Until(held.Expires), time.Second)}
		st.done = true
		return nil, nil
	case err != nil && r.forbidden(st, err):
		return nil, nil
	}
	return sess, err
}

func (r *Reconciler) slice() time.Duration {
	if r.Slice > 0 {
		return r.Slice
	}
	return 2 * time.Second
}

func (r *Reconciler) leaseDuration() time.Duration {
	if r.LeaseDuration > 0 {
		return r.LeaseDuration
	}
	return 15 * time.Second
}
