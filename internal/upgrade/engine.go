package upgrade

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/plan"
)

// GateRunner evaluates one configured gate after a wave.
type GateRunner interface {
	Evaluate(ctx context.Context, g v1alpha1.Gate, wave int) (passed bool, evidence string, err error)
}

// Observer sees the run as it goes, for the live terminal view.
type Observer interface {
	// Event is called for every history entry.
	Event(e v1alpha1.Event)
	// Progress is called after every recorded outcome.
	Progress(st *v1alpha1.MeshUpgradeStatus)
}

// Engine runs a MeshUpgrade: it is the same list of steps in the CLI
// (Run, foreground) and in the controller (Step, once per reconcile). It keeps all state in the MeshUpgrade status, so a run
// killed at any point resumes from what the cluster records.
type Engine struct {
	// Store holds the run's record; Store (the cluster) in production, a
	// wrapper or an in-memory record in tests.
	Store StatusStore
	Kube  kubernetes.Interface
	// Gates evaluates configured gates; nil fails any configured gate.
	Gates GateRunner
	// MoveTag points a revision tag at a revision.
	MoveTag func(ctx context.Context, tag, revision string) error
	// Gateways flips meshroll's blue/green gateways (spec.flipGateways)
	// and flips them back on rollback or halt.
	Gateways GatewaySwitcher
	// RemoveRevision removes a revision once nothing references it (the
	// prune step, spec.prune); it refuses with *controlplane.InUseError.
	RemoveRevision func(ctx context.Context, revision string) error
	// ProxyImage is the istio-proxy image a revision injects now, used to
	// confirm every new pod runs it.
	ProxyImage func(revision string) string
	// VMs assigns revisions to VMs and waits for their agents (workloads of
	// mechanism VM, vm_engine.go); nil fails any VM move.
	VMs *dataplane.VMExecutor
	// Observer may be nil.
	Observer Observer
	// Lease, when set, is held for the whole run (Run) or step (Step), so
	// that a second engine (another CLI, a controller replica) is refused
	// instead of overwriting this one's record.
	Lease *Lease
	// Watcher, when set, is the informer cache rollouts are watched
	// through, shared by every Step (the controller starts it once); nil
	// starts one per Run or Step.
	Watcher *dataplane.Watcher
	// Now is the clock (tests pass a fake one); nil is time.Now.
	Now func() time.Time
	// FlushEvery bounds how often progress is written to the status while
	// workloads move (default 1 s); phase changes and intents are written
	// at once.
	FlushEvery time.Duration
	// PollEvery is how often a pause or a bake rereads the MeshUpgrade to
	// notice a requested rollback (default 2 s).
	PollEvery time.Duration
	// RetryFor is how long a transient API error (500, 429, 409, a stalled
	// or dropped request) of one operation is retried with backoff before
	// the run stops, resumable (default 1m; see retry.go).
	RetryFor time.Duration
	// RequestTimeout bounds each API request (default 30s).
	RequestTimeout time.Duration
	// Slice, when set, bounds how long a Step waits on moves in flight:
	// once it has run this long, the Step returns (Result.InFlight) with
	// the moves still running in its Session, whose next Step records
	// their outcomes and starts the next ones. The controller sets it, so
	// that a reconcile lasts seconds, not a wave, and an edit or a status
	// read is answered between slices; zero (the CLI) never yields.
	Slice time.Duration
}

// ErrHalted is returned when a run stopped for an operator; ErrRolledBack
// when it rolled back. Both leave the cluster consistent.
var (
	ErrHalted     = errors.New("upgrade halted")
	ErrRolledBack = errors.New("upgrade rolled back")
)

// run is the state of one Run call.
type run struct {
	*Engine
	mu        *v1alpha1.MeshUpgrade
	exec      *dataplane.Executor
	index     map[string]int
	dirty     bool
	lastFlush time.Time
	// pending is the status write in flight in the background while
	// workloads move, nil when none.
	pending chan flushDone
	// wp is the frozen plan; inflight the moves running, whose outcomes
	// arrive on results; failed is set once a move must stop the run (no new move
	// starts); flushTick paces progress writes.
	wp        plan.WavePlan
	inflight  map[int]bool
	results   chan outcome
	failed    bool
	flushTick *time.Ticker
	// stop is why the run stops resumably (a transient error outlasted its
	// retries); retried counts the transient errors retried.
	stop    error
	retried atomic.Int64
	// undoing is set once the rollback started: it flips the gateways
	// back itself, and a halt it ends in must not write again.
	undoing bool
	// paused is set when the loop stopped for spec.paused.
	paused bool
	// sliceEnd fires when the Step has run for Engine.Slice; yielded is
	// set when the loop returned for it with moves still in flight.
	sliceEnd <-chan time.Time
	yielded  bool
}

type outcome struct {
	i   int
	res dataplane.Result
	err error
}

func phaseErr(mu *v1alpha1.MeshUpgrade) error {
	switch mu.Status.Phase {
	case v1alpha1.PhaseHalted:
		return fmt.Errorf("%w: %s", ErrHalted, mu.Status.Message)
	case v1alpha1.PhaseRolledBack:
		return fmt.Errorf("%w: %s", ErrRolledBack, mu.Status.Message)
	}
	return nil
}

func (r *run) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// loop takes steps until the run must wait (it returns when: a pause, a
// bake, a gate's interval), reaches a final phase (zero time) or stops on
// an error. It never sleeps: Step hands the wait to its caller.
func (r *run) loop(ctx context.Context) (time.Time, error) {
	st := &r.mu.Status
	if r.inflight == nil {
		// A run resumed after a yield keeps its moves in flight.
		r.wp = wavePlan(st, r.mu.Spec.Strategy.Parallelism)
		r.inflight = map[int]bool{}
		r.results = make(chan outcome, max(1, r.wp.Parallelism))
		r.flushTick = time.NewTicker(r.flushEvery())
	}
	r.yielded, r.sliceEnd = false, nil
	if r.Slice > 0 {
		t := time.NewTimer(r.Slice)
		defer t.Stop()
		r.sliceEnd = t.C
	}
	for {
		if r.mu.Spec.RollbackRequested && st.Phase != v1alpha1.PhaseRollingBack && st.Phase != v1alpha1.PhaseRolledBack {
			if len(r.inflight) > 0 {
				if err := r.await(ctx); err != nil || r.yielded {
					return time.Time{}, err
				}
				continue
			}
			// Refused before any write (From gone, a later upgrade moved
			// the same workloads); `meshroll rollback` checks the same
			// before it asks.
			if err := r.checkRollback(ctx); err != nil {
				return time.Time{}, err
			}
			r.setPhase(v1alpha1.PhaseRollingBack, v1alpha1.ReasonRequested, "rollback requested by an operator")
		}
		if st.Phase.Final() {
			if st.Phase == v1alpha1.PhaseHalted && !r.undoing {
				r.haltGateways(ctx)
			}
			return time.Time{}, nil
		}
		if st.Phase == v1alpha1.PhaseRollingBack {
			if len(r.inflight) > 0 {
				if err := r.await(ctx); err != nil || r.yielded {
					return time.Time{}, err
				}
				continue
			}
			return time.Time{}, r.rollback(ctx)
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, context.Cause(ctx)
		}
		if r.mu.Spec.Paused {
			if len(r.inflight) > 0 {
				// A started move ends recorded, never half-done.
				if err := r.await(ctx); err != nil || r.yielded {
					return time.Time{}, err
				}
				continue
			}
			return time.Time{}, r.pause(ctx)
		}
		r.resume()
		d := plan.Next(r.wp, r.state(), r.now())
		if (r.failed || d.Action != plan.ActionMigrate) && len(r.inflight) > 0 {
			// Let moves already started finish before gating, pausing or
			// rolling back: each ends recorded, never half-done.
			if err := r.await(ctx); err != nil || r.yielded {
				return time.Time{}, err
			}
			continue
		}
		switch res := r.step(ctx, d).(type) {
		case stepYield:
			return time.Time{}, nil
		case stepWait:
			return res.until, nil
		case stepTransient:
			return time.Time{}, res.err
		case stepFailed:
			if err := r.fail(ctx, res); err != nil {
				return time.Time{}, err
			}
		case stepFinal:
			return time.Time{}, nil
		}
	}
}

// step takes the one step plan.Next decided.
func (r *run) step(ctx context.Context, d plan.Decision) stepResult {
	switch d.Action {
	case plan.ActionMigrate:
		if r.gatewaysDue() {
			// The gateways step comes before the first wave's first write.
			return r.flipGateways(ctx)
		}
		return r.migrate(ctx, d)
	case plan.ActionGate:
		return r.gate(ctx, d.Wave, d.AfterBake)
	case plan.ActionBake:
		return r.wait(ctx, v1alpha1.PhaseBaking, v1alpha1.ReasonBaking, d)
	case plan.ActionPause:
		return r.wait(ctx, v1alpha1.PhasePaused, v1alpha1.ReasonPaused, d)
	case plan.ActionRevert:
		return r.revert(ctx, d)
	case plan.ActionHalt:
		r.setPhase(v1alpha1.PhaseHalted, v1alpha1.ReasonRolloutFailed, d.Reason+"; fix the workload and run `meshroll rollback "+r.mu.Name+"`, then start a new upgrade")
		return stepFinal{}
	case plan.ActionRollback:
		r.setPhase(v1alpha1.PhaseRollingBack, v1alpha1.ReasonRolloutFailed, d.Reason)
		return transientIf(r.flush(ctx, true))
	case plan.ActionDone:
		if r.gatewaysDue() {
			// A run without waves (spec.skipMigrate) still flips first.
			return r.flipGateways(ctx)
		}
		return r.finishSteps(ctx, d.Reason) // tags and prune steps, then Succeeded
	}
	return stepTransient{err: fmt.Errorf("failed to take step %q: unknown action", d.Action)}
}

// migrate records the intent for the decision's window when it has none
// yet, starts as many of its workloads as there are free slots and waits for
// the next move to end (or for a progress write to be due).
func (r *run) migrate(ctx context.Context, d plan.Decision) stepResult {
	st := &r.mu.Status
	if r.failed {
		r.collect(context.WithoutCancel(ctx))
		return stepTransient{err: r.stop}
	}
	if len(d.Record) > 0 {
		// Intent before write: the window is in the status before any of
		// its patches is sent, so a kill or a failed write can never hide
		// a moved workload from resume or rollback.
		r.recordIntent(d.Wave, d.Record)
		if err := r.flush(ctx, true); err != nil {
			r.collect(context.WithoutCancel(ctx))
			return stepTransient{err: fmt.Errorf("failed to record the intent to move %d workload(s): %w", len(d.Record), err)}
		}
	}
	started := 0
	for _, ref := range d.Workloads {
		i := r.index[ref.String()]
		if r.inflight[i] || len(r.inflight) >= max(1, r.wp.Parallelism) {
			continue
		}
		if st.Workloads[i].Outcome != v1alpha1.OutcomePending {
			// plan.Next records every workload before handing it out;
			// never write to one without a record.
			r.collect(context.WithoutCancel(ctx))
			return stepTransient{err: fmt.Errorf("failed to move %s: no intent recorded", ref)}
		}
		if err := r.prepare(ctx, i); err != nil {
			r.collect(context.WithoutCancel(ctx))
			return stepTransient{err: err}
		}
		r.inflight[i] = true
		started++
		go r.move(ctx, r.job(i, r.mu.Spec.To, true), r.results)
	}
	if started == 0 && len(r.inflight) == 0 {
		return stepDone{}
	}
	if err := r.await(ctx); err != nil {
		return stepTransient{err: err}
	}
	if r.yielded {
		return stepYield{}
	}
	return stepDone{}
}

// collect waits for every in-flight move and records it.
func (r *run) collect(ctx context.Context) {
	for len(r.inflight) > 0 {
		o := <-r.results
		delete(r.inflight, o.i)
		r.finish(o)
	}
	_ = r.flush(ctx, true)
}

// prepare applies the namespace relabel or tag move workload i's mechanism
// needs (the frozen plan already records every label move, so rollback points
// it back even when a kill comes before Done is written); Done is recorded
// before any workload that depends on the move restarts.
func (r *run) prepare(ctx context.Context, i int) error {
	st := &r.mu.Status
	w := &st.Workloads[i]
	moved := false
	switch w.Mechanism {
	case v1alpha1.MechanismNamespace:
		for j := range st.Namespaces {
			n := &st.Namespaces[j]
			if n.Name == w.Namespace && !n.Done {
				err := r.retry(ctx, func(ctx context.Context) error {
					_, err := r.exec.SetNamespaceRev(ctx, n.Name, n.To)
					return err
				})
				if err != nil {
					return err
				}
				n.Done, moved = true, true
				r.event("relabel", w.Wave, fmt.Sprintf("namespace %s: istio.io/rev %s → %s", n.Name, n.From, n.To))
			}
		}
	case v1alpha1.MechanismTag:
		for j := range st.Tags {
			t := &st.Tags[j]
			if t.Name == w.Via && !t.Done {
				if err := r.moveTag(ctx, t.Name, t.To); err != nil {
					return err
				}
				t.Done, moved = true, true
				r.event("tag", w.Wave, fmt.Sprintf("tag %s: %s → %s", t.Name, t.From, t.To))
			}
		}
	}
	if moved {
		return r.flush(ctx, true)
	}
	return nil
}

func (r *run) moveTag(ctx context.Context, tag, rev string) error {
	if r.MoveTag == nil {
		return fmt.Errorf("failed to move tag %q: no tag mover configured", tag)
	}
	// No request timeout here: a tag move renders charts before it writes.
	return r.retry(ctx, func(ctx context.Context) error { return r.MoveTag(ctx, tag, rev) })
}

// job is everything a move or restore goroutine needs, copied on the main
// goroutine: the engine replaces metadata and spec after each status write,
// so workers must not read the MeshUpgrade themselves.
type job struct {
	i                     int
	kind, namespace, name string
	token, setRev, image  string
	forward               bool
	timeout               time.Duration
	// vm is what a VM's move assigns (mechanism VM, vm_engine.go).
	vm vmJob
}

// job builds the job that moves workload i to rev (forward) or restores it.
func (r *run) job(i int, rev string, forward bool) job {
	w := r.mu.Status.Workloads[i]
	j := job{i: i, kind: w.Kind, namespace: w.Namespace, name: w.Name, token: r.mu.Status.RestartToken, forward: forward, timeout: r.rolloutTimeout()}
	if forward && w.Mechanism == v1alpha1.MechanismPod {
		j.setRev = rev
	}
	if r.ProxyImage != nil {
		j.image = r.ProxyImage(rev)
	}
	if w.Mechanism == v1alpha1.MechanismVM {
		j.vm = r.vmJob(w, forward)
	}
	return j
}

// move applies one job and confirms the workload's proxies. Transient
// errors are retried: each attempt rebuilds its patch from the workload as
// it is then (the restart token makes a repeated move a no-op), so a write
// that landed although its answer was lost is never repeated as a restart.
func (r *run) move(ctx context.Context, j job, results chan<- outcome) {
	if templateOnly(j.kind) {
		res, err := r.moveTemplate(ctx, j) // template.go: nothing to restart
		results <- outcome{i: j.i, res: res, err: err}
		return
	}
	if j.kind == VMKind {
		res, err := r.moveVM(ctx, j) // vm_engine.go: the agent installs and reports
		results <- outcome{i: j.i, res: res, err: err}
		return
	}
	var res dataplane.Result
	err := r.retry(ctx, func(ctx context.Context) error {
		var err error
		if j.forward {
			res, err = r.exec.Move(ctx, j.kind, j.namespace, j.name, j.token, j.setRev, j.timeout)
		} else {
			res, err = r.exec.Restore(ctx, j.kind, j.namespace, j.name, j.timeout)
		}
		if err == nil && j.image != "" {
			err = r.exec.ConfirmProxies(ctx, j.kind, j.namespace, j.name, j.image)
		}
		if !j.forward && errors.Is(err, dataplane.ErrGone) {
			err = nil // nothing left to restore
		}
		return err
	})
	results <- outcome{i: j.i, res: res, err: err}
}

func (r *run) flushEvery() time.Duration {
	if r.FlushEvery > 0 {
		return r.FlushEvery
	}
	return time.Second
}

// setPhase changes phase, message and conditions together.
func (r *run) setPhase(p v1alpha1.Phase, reason, msg string) {
	st := &r.mu.Status
	st.Phase, st.Message = p, msg
	now := metav1.NewTime(r.now())
	progressing := metav1.ConditionTrue
	if p.Final() {
		progressing = metav1.ConditionFalse
		st.CompletedAt = &now
	}
	setCondition(st, v1alpha1.ConditionProgressing, progressing, reason, msg, r.mu.Generation, now)
	switch p {
	case v1alpha1.PhaseSucceeded:
		setCondition(st, v1alpha1.ConditionComplete, metav1.ConditionTrue, reason, msg, r.mu.Generation, now)
	case v1alpha1.PhaseRolledBack:
		setCondition(st, v1alpha1.ConditionRolledBack, metav1.ConditionTrue, reason, msg, r.mu.Generation, now)
	}
	st.ObservedGeneration = r.mu.Generation
	r.event(string(p), st.CurrentWave, msg)
	r.dirty = true
}

func setCondition(st *v1alpha1.MeshUpgradeStatus, typ string, s metav1.ConditionStatus, reason, msg string, gen int64, now metav1.Time) {
	c := metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: now}
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			if st.Conditions[i].Status == s {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// interrupted reports an error caused by the run's context ending (Ctrl-C, a
// caller's deadline): the move stays pending for the next run instead of
// counting as a failed rollout that would trigger a rollback.
func interrupted(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
