package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// rollback is the run's steps backwards: it first refuses (before any write)
// when From is no longer installed or a later upgrade moved the same things
// (see CheckRollback), then points every label move back at From (tags,
// namespaces), restores the previous pod template of every workload this run
// touched, newest first, Parallelism at a time, and finally flips the
// recorded gateways back to their previous colour. Restoring the exact
// template (not a new restart) sends a Deployment back to its previous
// ReplicaSet, so a workload whose new pods never came up recovers without
// creating any. It is idempotent: a rerun after a crash writes only what is
// not restored yet.
func (r *run) rollback(ctx context.Context) error {
	st := &r.mu.Status
	r.undoing = true
	if err := r.checkRollback(ctx); err != nil {
		if errors.Is(err, ErrRollbackRefused) {
			r.setPhase(v1alpha1.PhaseHalted, v1alpha1.ReasonRollbackFailed, err.Error())
			return r.flush(ctx, true)
		}
		return err
	}
	for j := range st.Tags {
		t := &st.Tags[j]
		if err := r.moveTag(ctx, t.Name, t.From); err != nil {
			return r.rollbackFailed(ctx, fmt.Errorf("failed to move tag %q back to %s: %w", t.Name, t.From, err))
		}
		if t.Done {
			t.Done = false
			r.event("tag", 0, fmt.Sprintf("tag %s: back to %s", t.Name, t.From))
		}
	}
	for j := range st.Namespaces {
		n := &st.Namespaces[j]
		if _, err := r.exec.SetNamespaceRev(ctx, n.Name, n.From); err != nil {
			return r.rollbackFailed(ctx, err)
		}
		if n.Done {
			n.Done = false
			r.event("relabel", 0, fmt.Sprintf("namespace %s: istio.io/rev back to %s", n.Name, n.From))
		}
	}
	if s := st.Step(v1alpha1.StepTags); s != nil && s.State != v1alpha1.StepReverted && s.State != v1alpha1.StepSkipped {
		r.setStep(v1alpha1.StepTags, v1alpha1.StepReverted, fmt.Sprintf("%d tag(s) point at %s again", len(st.Tags), r.mu.Spec.From))
	}
	r.adoptLabelled()
	if err := r.flush(ctx, true); err != nil {
		return err
	}
	var todo []int
	for i, w := range st.Workloads {
		if w.Outcome != "" && w.Outcome != v1alpha1.OutcomeRolledBack {
			todo = append(todo, i)
		}
	}
	slices.Reverse(todo)
	r.event("rollback", st.CurrentWave, fmt.Sprintf("restoring %d workload(s) to %s, newest first", len(todo), r.mu.Spec.From))
	parallel := max(1, r.mu.Spec.Strategy.Parallelism)
	results := make(chan outcome, parallel)
	next, inflight, failures := 0, 0, 0
	for next < len(todo) || inflight > 0 {
		for next < len(todo) && inflight < parallel && ctx.Err() == nil {
			i := todo[next]
			next++
			inflight++
			go r.move(ctx, r.job(i, r.mu.Spec.From, false), results)
		}
		if inflight == 0 {
			break
		}
		o := <-results
		inflight--
		w := &st.Workloads[o.i]
		r.dirty = true
		switch {
		case interrupted(o.err):
		case o.err != nil:
			failures++
			w.Outcome, w.Message = v1alpha1.OutcomeRollbackFailed, o.err.Error()
			r.event("failed", w.Wave, "rollback: "+o.err.Error())
		default:
			if w.Outcome == v1alpha1.OutcomeFailed {
				w.Message = "rolled back after: " + w.Message
			}
			w.Outcome = v1alpha1.OutcomeRolledBack
		}
		r.progress()
		if err := r.flush(ctx, false); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := r.flipGatewaysBack(ctx); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return r.rollbackFailed(ctx, err)
	}
	if failures > 0 {
		return r.rollbackFailed(ctx, fmt.Errorf("%d workload(s) could not be restored; see their messages", failures))
	}
	// Every workload is back: the revision this run installed can go.
	if err := r.uninstall(ctx); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return r.rollbackFailed(ctx, err)
	}
	r.setPhase(v1alpha1.PhaseRolledBack, v1alpha1.ReasonRollbackDone,
		fmt.Sprintf("rolled back %d workload(s) to %s after: %s", len(todo), r.mu.Spec.From, st.Message))
	return r.flush(ctx, true)
}

// adoptLabelled records as pending every workload that carries this
// upgrade's label on the cluster but has no outcome in the record (a status
// write lost to a kill, a failure or a concurrent writer), so the restore
// below finds it: rollback reads the record and also what carries the
// upgrade's own label. A labelled workload outside the frozen plan is added
// to the record in the last wave, since it was moved last at the earliest.
func (r *run) adoptLabelled() {
	st := &r.mu.Status
	for _, ref := range r.exec.Watcher.Labelled(r.mu.Name) {
		const msg = "found on the cluster carrying this upgrade's label with no recorded outcome"
		i, ok := r.index[ref.String()]
		if !ok {
			st.Workloads = append(st.Workloads, v1alpha1.WorkloadStatus{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name,
				Wave: max(1, st.Waves), Mechanism: v1alpha1.MechanismPod})
			i = len(st.Workloads) - 1
			r.index[ref.String()] = i
		}
		if w := &st.Workloads[i]; w.Outcome == "" || w.Outcome == v1alpha1.OutcomeRolledBack {
			w.Outcome, w.Message = v1alpha1.OutcomePending, msg
			r.event("rollback", w.Wave, ref.String()+": "+msg)
		}
	}
}

// rollbackFailed halts the run: a rollback that cannot finish needs a human.
func (r *run) rollbackFailed(ctx context.Context, err error) error {
	r.setPhase(v1alpha1.PhaseHalted, v1alpha1.ReasonRollbackFailed, "rollback incomplete: "+err.Error()+"; fix it, then rerun `meshroll rollback "+r.mu.Name+"`")
	return r.flush(ctx, true)
}

// checkRollback reads the facts and applies CheckRollback.
func (r *run) checkRollback(ctx context.Context) error {
	lister, _ := r.Store.(Lister)
	f, err := ReadRollbackFacts(ctx, r.Kube, lister, r.mu)
	if err != nil {
		return err
	}
	return CheckRollback(r.mu, f)
}

// haltGateways flips the recorded gateways back when a run halts: the new
// revision is suspect, and the halted run will not flip them back itself.
// A failure is recorded in the message; `meshroll rollback` retries it.
func (r *run) haltGateways(ctx context.Context) {
	if !r.gatewaysFlipped() {
		return
	}
	if err := r.flipGatewaysBack(ctx); err != nil {
		r.mu.Status.Message += "; gateways not flipped back: " + err.Error()
		r.dirty = true
	}
}

// gatewaysFlipped reports whether a recorded gateway may select To.
func (r *run) gatewaysFlipped() bool {
	s := r.mu.Status.Step(v1alpha1.StepGateways)
	return s != nil && s.State != v1alpha1.StepReverted && len(r.mu.Status.Gateways) > 0
}
