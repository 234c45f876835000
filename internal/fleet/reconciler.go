package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// Reconciler drives FleetUpgrades from the hub's `meshroll controller`: each
// reconcile is one Session.Step, the decision the CLI's foreground run loops
// over, and a wait (a soak, a member run, an approval) is a requeue, never a
// sleep. Members are the hub's Secrets, watched while this replica leads. Member runs
// take minutes, longer than a reconcile, so they belong to a session that
// lives on the manager's context (Start) while this replica leads; a
// per-FleetUpgrade Lease keeps a CLI run and the controller from driving one
// FleetUpgrade at once, and a replica that takes over resumes from the
// recorded status like a rerun of the CLI.
type Reconciler struct {
	// Store reads and writes FleetUpgrades uncached: each step needs the
	// latest record.
	Store Store
	// Hub reads the member Secrets and holds the per-upgrade Leases.
	Hub kubernetes.Interface
	// Namespace holds the member Secrets and the Leases.
	Namespace string
	// Driver runs one member's MeshUpgrade or rollback.
	Driver Driver
	// Recorder turns the FleetUpgrade's history into Kubernetes events.
	Recorder events.EventRecorder
	// Identity names this replica in the Leases; LeaseDuration is theirs.
	Identity      string
	LeaseDuration time.Duration
	// Poll is the requeue interval while a FleetUpgrade waits (default 2 s).
	Poll time.Duration
	// Log receives the engine's lines (history, member output).
	Log io.Writer
	// Observe overrides ObserveMember (tests).
	Observe func(ctx context.Context, c Cluster, upgradeName, version string, now time.Time) Observation

	mu       sync.Mutex
	base     context.Context
	sessions map[string]*session
	// members is the informer on the member Secrets, started with Start.
	members *memberInformer
}

// session is one FleetUpgrade this replica drives: the engine's session and
// the Lease it holds.
type session struct {
	*Session
	ctx     context.Context
	release func()
}

// SetupWithManager registers the reconciler and its session keeper. Only
// spec edits (an approval, a pause, a rollback request from Git) and creates
// start a reconcile; the engine's own status writes would otherwise requeue
// every step at once.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(r); err != nil {
		return fmt.Errorf("failed to add the FleetUpgrade session keeper: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.FleetUpgrade{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("fleetupgrade").
		Complete(r)
}

// Start keeps the context member runs live on while this replica leads (a
// leader-election runnable); when it ends, every session stops.
func (r *Reconciler) Start(ctx context.Context) error {
	members := startMembers(ctx, r)
	r.mu.Lock()
	r.base, r.members = ctx, members
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = nil
	for name, s := range r.sessions {
		s.Stop()
		s.release()
		delete(r.sessions, name)
	}
	return nil
}

// running reports whether Start has given the sessions their context.
func (r *Reconciler) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base != nil && r.base.Err() == nil
}

func (r *Reconciler) poll() time.Duration {
	if r.Poll > 0 {
		return r.Poll
	}
	return 2 * time.Second
}

// Reconcile takes one step of the FleetUpgrade.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx).WithValues("fleetUpgrade", req.Name)
	fu, err := r.Store.Get(ctx, req.Name)
	if apierrors.IsNotFound(err) {
		r.drop(req.Name)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to read FleetUpgrade %q: %w", req.Name, err)
	}
	if fu.Status.Phase.Final() && (!fu.Spec.RollbackRequested || fu.Status.Phase == v1alpha1.FleetRolledBack) {
		r.drop(req.Name)
		return ctrl.Result{}, nil
	}
	clusters, err := r.loadMembers(ctx)
	if err != nil {
		// A missing or broken member Secret: nothing is touched; the Secret
		// may be fixed without a spec edit, so look again later.
		return ctrl.Result{RequeueAfter: 30 * time.Second}, r.unavailable(ctx, fu, err)
	}
	s, err := r.session(req.Name)
	var held *upgrade.HeldError
	if errors.Is(err, errNotLeading) {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if errors.As(err, &held) {
		logger.Info("another engine runs this FleetUpgrade; waiting for its lease", "holder", held.Holder)
		return ctrl.Result{RequeueAfter: r.poll()}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	s.SetClusters(clusters)
	fu, next, err := s.Step(s.ctx, req.Name)
	var invalid *InvalidError
	switch {
	case errors.As(err, &invalid):
		// Freeze refused the spec and recorded why as a condition.
		r.drop(req.Name)
		if fu != nil {
			r.Recorder.Eventf(fu, nil, corev1.EventTypeWarning, v1alpha1.ReasonInvalidSpec, "Plan", "%s", err.Error())
		}
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	case err != nil && s.ctx.Err() != nil:
		r.drop(req.Name) // the lease was lost or leadership ended
		return ctrl.Result{RequeueAfter: r.poll()}, nil
	case err != nil:
		return ctrl.Result{}, err
	case next == StepDone:
		r.drop(req.Name)
		return ctrl.Result{}, nil
	case next == StepAgain:
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	return ctrl.Result{RequeueAfter: r.poll()}, nil
}

// errNotLeading: the session keeper has not started yet (it starts with the
// controllers once this replica leads) or has stopped.
var errNotLeading = errors.New("the FleetUpgrade session keeper is not running")

// session returns the FleetUpgrade's session, starting one (taking its
// Lease) when this replica has none.
func (r *Reconciler) session(name string) (*session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sessions[name]; s != nil && s.ctx.Err() == nil {
		return s, nil
	} else if s != nil {
		s.Stop()
		s.release()
		delete(r.sessions, name)
	}
	if r.base == nil || r.base.Err() != nil {
		return nil, errNotLeading
	}
	lease := &upgrade.Lease{Kube: r.Hub, Namespace: r.Namespace, Holder: r.Identity, Duration: r.LeaseDuration, Alive: upgrade.LocalAlive}
	ctx, release, err := lease.Acquire(r.base, "fleet-"+name)
	if err != nil {
		return nil, err
	}
	e := &Engine{Store: r.Store, Driver: r.Driver, Poll: r.poll(), Log: r.Log, Observe: r.Observe, Event: r.event}
	if r.sessions == nil {
		r.sessions = map[string]*session{}
	}
	s := &session{Session: e.Session(), ctx: ctx, release: release}
	r.sessions[name] = s
	return s, nil
}

// drop ends the FleetUpgrade's session: its member runs stop and its Lease
// is given up.
func (r *Reconciler) drop(name string) {
	r.mu.Lock()
	s := r.sessions[name]
	delete(r.sessions, name)
	r.mu.Unlock()
	if s != nil {
		s.Stop()
		s.release()
	}
}

// event turns one history entry into a Kubernetes event on the
// FleetUpgrade: a halt, a failure or a rollback is a warning.
func (r *Reconciler) event(fu *v1alpha1.FleetUpgrade, ev v1alpha1.FleetEvent) {
	if r.Recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	switch ev.Type {
	case "halt", "rollback", "fail", "failed":
		typ = corev1.EventTypeWarning
	}
	reason := upperFirst(ev.Type) // Fleet, Stage, Cluster, Gate, Approval, Pause, Halt, Rollback
	r.Recorder.Eventf(fu, nil, typ, reason, "Step", "%s %s", eventWhere(ev), ev.Message)
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// unavailable records that the members cannot be read (no Secret, one
// without a kubeconfig) as a condition, once.
func (r *Reconciler) unavailable(ctx context.Context, fu *v1alpha1.FleetUpgrade, cause error) error {
	msg := cause.Error() + "; no member was touched"
	c := meta.FindStatusCondition(fu.Status.Conditions, v1alpha1.FleetConditionProgressing)
	if c != nil && c.Reason == v1alpha1.ReasonMembersUnavailable && c.Message == msg {
		return nil
	}
	meta.SetStatusCondition(&fu.Status.Conditions, metav1.Condition{Type: v1alpha1.FleetConditionProgressing, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonMembersUnavailable, Message: msg, ObservedGeneration: fu.Generation})
	if fu.Status.Phase == "" {
		fu.Status.Phase = v1alpha1.FleetPending
	}
	if fu.Status.Message == "" || len(fu.Status.Clusters) == 0 {
		fu.Status.Message = msg
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(fu, nil, corev1.EventTypeWarning, v1alpha1.ReasonMembersUnavailable, "LoadMembers", "%s", msg)
	}
	if _, err := r.Store.UpdateStatus(ctx, fu); err != nil {
		return err
	}
	return nil
}
