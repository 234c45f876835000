package upgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/plan"
)

// This file decides what a move's error means, so that only real failures
// spend the failure budget (spec.strategy.maxFailedWorkloads): a transient
// error that outlasted its retries stops the run resumably, a workload its
// owner deleted or that became unsafe to restart is skipped, and a rollout
// that failed is a failure, which plan.Next weighs against the budget (revert
// and go on, or halt / roll back).

// finish records a move's outcome (budget.go); it reports whether the run
// must stop starting moves.
func (r *run) finish(o outcome) bool { return r.settle(o) }

// waveDone reports whether every workload of wave has its final outcome.
func (r *run) waveDone(wave int) bool {
	for _, w := range r.mu.Status.Workloads {
		if w.Wave == wave && w.Outcome != v1alpha1.OutcomeSucceeded && w.Outcome != v1alpha1.OutcomeSkipped {
			return false
		}
	}
	return true
}

// rolloutTimeout is the no-progress deadline of a rollout; 0 takes each
// workload's own (dataplane.ProgressWindow), so a large workload that keeps
// moving is never failed by a fixed bound.
func (r *run) rolloutTimeout() time.Duration {
	return max(0, r.mu.Spec.Strategy.RolloutTimeout.Duration)
}

// settle records a move's outcome; it reports whether the run must stop
// starting moves (a transient error outlasted its retries).
func (r *run) settle(o outcome) bool {
	st := &r.mu.Status
	w := &st.Workloads[o.i]
	r.dirty = true
	if o.res.Took > 0 {
		w.RolloutMillis = o.res.Took.Milliseconds()
	}
	var (
		gaveUp         *retryGaveUp
		notRestartable *dataplane.NotRestartableError
	)
	switch {
	case o.err == nil:
		w.Outcome, w.Message = v1alpha1.OutcomeSucceeded, ""
		r.progress()
		if r.waveDone(w.Wave) {
			r.event("wave", w.Wave, fmt.Sprintf("wave %d migrated", w.Wave))
		}
		return false
	case errors.As(o.err, &gaveUp):
		// Stays pending: the patch may or may not have landed, and a
		// rerun with the same restart token finds out without restarting
		// anything twice.
		w.Message = fmt.Sprintf("stopped after %d attempts: %v", gaveUp.attempts, gaveUp.err)
		if r.stop == nil {
			r.stop = fmt.Errorf("failed to move %s: the API server kept failing (%d attempts): %w; the run stopped where it was, rerun to resume", w.Ref(), gaveUp.attempts, gaveUp.err)
		}
		return true
	case interrupted(o.err):
		return false // stays pending: the next run resumes it
	case errors.Is(o.err, dataplane.ErrGone):
		w.Outcome, w.Message = v1alpha1.OutcomeSkipped, "deleted during the run (by its owner?): nothing left to move"
		r.event("skipped", w.Wave, w.Ref()+": "+w.Message)
	case errors.As(o.err, &notRestartable):
		w.Outcome, w.Message = v1alpha1.OutcomeSkipped, notRestartable.Reason+"; nothing was written, move it by hand"
		r.event("skipped", w.Wave, w.Ref()+": "+w.Message)
	default:
		w.Outcome, w.Message = v1alpha1.OutcomeFailed, o.err.Error()
		r.event("failed", w.Wave, o.err.Error())
	}
	r.progress()
	return false
}

// revert puts the workloads of d, which failed within their wave's budget,
// back on From (their previous pod template) so that none is left half
// rolled out, then lets the wave go on. A workload that cannot be put back
// is a failure the budget does not cover.
func (r *run) revert(ctx context.Context, d plan.Decision) stepResult {
	st := &r.mu.Status
	results := make(chan outcome, len(d.Workloads))
	for _, ref := range d.Workloads {
		go r.move(ctx, r.job(r.index[ref.String()], r.mu.Spec.From, false), results)
	}
	var stuck []string
	var stop error
	for range d.Workloads {
		o := <-results
		w := &st.Workloads[o.i]
		var gaveUp *retryGaveUp
		switch {
		case o.err == nil:
			w.Outcome = v1alpha1.OutcomeRolledBack
			w.Message = fmt.Sprintf("back on %s within the failure budget after: %s", r.mu.Spec.From, w.Message)
			r.event("reverted", w.Wave, w.Ref()+": "+w.Message)
		case errors.As(o.err, &gaveUp), interrupted(o.err):
			stop = errors.Join(stop, o.err) // stays failed: the next run reverts it
		default:
			stuck = append(stuck, w.Ref())
			w.Message = fmt.Sprintf("%s; could not be put back on %s: %v", w.Message, r.mu.Spec.From, o.err)
			r.event("failed", w.Wave, w.Ref()+": "+w.Message)
		}
		r.dirty = true
	}
	r.progress()
	if err := r.flush(ctx, true); err != nil {
		return stepTransient{err: err}
	}
	if stop != nil {
		return stepTransient{err: fmt.Errorf("failed to put %d failed workload(s) back on %s: %w", len(d.Workloads), r.mu.Spec.From, stop)}
	}
	if len(stuck) > 0 {
		return stepFailed{reason: v1alpha1.ReasonRollbackFailed, why: fmt.Sprintf("wave %d: %s failed and could not be put back on %s", d.Wave, strings.Join(stuck, ", "), r.mu.Spec.From)}
	}
	return stepDone{}
}
