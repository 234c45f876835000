package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// Condition types the controller owns; the engine owns Progressing,
// Complete and RolledBack.
const (
	// ConditionReady is True once the upgrade succeeded.
	ConditionReady = "Ready"
	// ConditionStalled is True while the run cannot go on without an
	// operator (a missing permission or revision, a refused plan).
	ConditionStalled = "Stalled"
)

// Stalled reasons: what only the cluster can tell, found before any
// workload write.
const (
	ReasonPermissionMissing = "PermissionMissing"
	ReasonRevisionMissing   = "RevisionMissing"
	ReasonPlanRefused       = "PlanRefused"
	ReasonInstallFailed     = "InstallFailed"
)

// Reconciler drives MeshUpgrades with the engine the CLI runs.
type Reconciler struct {
	// Client is the manager's client: MeshUpgrades are read from its cache.
	Client client.Client
	// Clients are the engine's and inventory's clients; Store reads and
	// writes MeshUpgrades uncached, as the engine needs the latest record.
	Clients   controlplane.Clients
	Inventory inventory.Clients
	Store     upgrade.Store
	Recorder  events.EventRecorder
	Metrics   *Metrics
	// Identity names this controller as the holder of per-upgrade leases.
	Identity string
	// Source and Cache are where revisions, tags and gateways render from.
	Source istio.ChartSource
	Cache  *istio.RenderCache
	// PermissionsEvery is how often the permission preflight runs again
	// (default 5m); a Forbidden answer runs it at once.
	PermissionsEvery time.Duration
	// LeaseDuration is the per-upgrade lease's (default 15s).
	LeaseDuration time.Duration
	// CertNamespace is where the webhook's certificate Secret lives (its
	// permissions are part of the preflight); "" when no webhook is served.
	CertNamespace string
	// Slice bounds how long one reconcile waits on rollouts in flight
	// (default 2s, the engine's Slice): the rollouts go on in the held
	// session and the reconcile is requeued at once.
	Slice time.Duration

	sessions sessions

	perm struct {
		sync.Mutex
		at      time.Time
		missing []string
	}
}

// SetupWithManager registers the reconciler. Only spec edits (and creates)
// start a reconcile: the engine's own status writes would otherwise requeue
// every run right after each step.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Sessions outlive reconciles; they end with the manager (leadership
	// lost or the process stopping), their moves recorded pending.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.sessions.closeAll()
		return nil
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.MeshUpgrade{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("meshupgrade").
		Complete(r)
}

// stall is why a run cannot go on without an operator.
type stall struct{ reason, message string }

// state is one reconcile's shared state: the sub-steps fill it in.
type state struct {
	mu     *v1alpha1.MeshUpgrade
	snap   *inventory.Snapshot
	result ctrl.Result
	stall  *stall
	// done stops the list of sub-steps (final, paused, waiting).
	done bool
}

// Reconcile is fetch → ordered sub-steps → the controller's conditions
// patched once, in the defer (doReconcile then updateStatus, errors
// joined).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	start := time.Now()
	log := log.FromContext(ctx).WithValues("upgrade", req.Name)
	ctx = ctrl.LoggerInto(ctx, log)
	mu := &v1alpha1.MeshUpgrade{}
	if err := r.Client.Get(ctx, req.NamespacedName, mu); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.Forget(req.Name)
			r.sessions.close(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	st := &state{mu: mu}
	defer func() {
		err = errors.Join(err, r.updateStatus(ctx, st))
		if err == nil {
			res = st.result
		}
		if r.Metrics != nil {
			r.Metrics.Reconcile.Observe(time.Since(start).Seconds())
		}
	}()
	return ctrl.Result{}, r.doReconcile(ctx, st)
}

// doReconcile walks the sub-steps in order; each may end the reconcile
// (done), stall it, or fail it (requeued with backoff).
func (r *Reconciler) doReconcile(ctx context.Context, st *state) error {
	if st.mu.Status.Phase.Final() && !st.mu.Spec.RollbackRequested {
		return nil // nothing to do; the defer keeps the conditions right
	}
	for _, sub := range []func(context.Context, *state) error{r.checkPermissions, r.install, r.plan, r.step} {
		if err := sub(ctx, st); err != nil || st.done || st.stall != nil {
			return err
		}
	}
	return nil
}

// updateStatus sets Ready, Stalled and ObservedGeneration on the latest
// record (the engine wrote the rest during the step) and writes it when
// they changed.
func (r *Reconciler) updateStatus(ctx context.Context, st *state) error {
	// A held session has the record as it last wrote it: no read needed.
	sess := r.sessions.get(st.mu.Name)
	var fresh *v1alpha1.MeshUpgrade
	if sess != nil {
		fresh = sess.Latest()
	}
	if fresh == nil {
		var err error
		fresh, err = r.Store.Get(ctx, st.mu.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	r.Metrics.Observe(fresh.Name, fresh.Spec.From, fresh.Spec.To, &fresh.Status)
	before := fresh.Status.DeepCopy()
	gen := fresh.Generation
	now := metav1.Now()
	ready := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: "Pending", Message: "the upgrade has not started", ObservedGeneration: gen, LastTransitionTime: now}
	switch p := fresh.Status.Phase; {
	case p == v1alpha1.PhaseSucceeded:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, string(p), fresh.Status.Message
	case p != "":
		ready.Reason, ready.Message = string(p), fresh.Status.Message
	}
	stalled := metav1.Condition{Type: ConditionStalled, Status: metav1.ConditionFalse, Reason: "Progressing", Message: "nothing blocks the run", ObservedGeneration: gen, LastTransitionTime: now}
	if st.stall != nil {
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, st.stall.reason, st.stall.message
		ready.Reason, ready.Message = st.stall.reason, st.stall.message
	} else if fresh.Status.Phase == v1alpha1.PhaseHalted {
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, string(v1alpha1.PhaseHalted), fresh.Status.Message
	}
	if fresh.Status.Phase == "" {
		fresh.Status.Phase = v1alpha1.PhasePending
	}
	meta.SetStatusCondition(&fresh.Status.Conditions, ready)
	meta.SetStatusCondition(&fresh.Status.Conditions, stalled)
	fresh.Status.ObservedGeneration = gen
	if equalStatus(before, &fresh.Status) {
		return nil
	}
	written, err := r.Store.UpdateStatus(ctx, fresh)
	if err != nil {
		return fmt.Errorf("failed to update status of MeshUpgrade %q: %w", fresh.Name, err)
	}
	if sess != nil {
		sess.Adopt(written) // its next write needs this resourceVersion
	}
	return nil
}

// equalStatus compares what updateStatus may change.
func equalStatus(a, b *v1alpha1.MeshUpgradeStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Phase != b.Phase || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for _, c := range b.Conditions {
		o := meta.FindStatusCondition(a.Conditions, c.Type)
		if o == nil || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message || o.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}
