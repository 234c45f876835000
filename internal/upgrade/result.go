package upgrade

import (
	"context"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// stepResult is what one step of a run ended in. Steps return a typed
// result instead of sleeping, retrying or changing the phase themselves, so
// the loop is the one place that decides what follows: the controller's
// reconciler will map the same results onto requeues, and a failure budget
// or a retry with backoff has one place to go.
type stepResult interface{ isStepResult() }

// stepDone: the step finished; plan.Next decides the next one.
type stepDone struct{}

// stepWait: nothing to do before until (a pause or a bake).
type stepWait struct{ until time.Time }

// stepTransient: the step could not be completed (an API error, an
// interruption); nothing is lost, since everything it did is recorded, and
// a rerun resumes where it stopped. Today the run stops with err; retrying
// with backoff belongs here.
type stepTransient struct{ err error }

// stepFailed: a check failed for real (a gate, not a measurement error of
// it): the run rolls back or halts by policy. A failure budget counts these.
type stepFailed struct{ reason, why string }

// stepFinal: the run reached a final phase.
type stepFinal struct{}

// stepYield: the Step's slice (Engine.Slice) ended with moves in flight;
// they go on in the Session and its next Step takes their outcomes.
type stepYield struct{}

func (stepDone) isStepResult()      {}
func (stepWait) isStepResult()      {}
func (stepTransient) isStepResult() {}
func (stepFailed) isStepResult()    {}
func (stepFinal) isStepResult()     {}
func (stepYield) isStepResult()     {}

// transientIf wraps a non-nil error as stepTransient, nil as stepDone.
func transientIf(err error) stepResult {
	if err != nil {
		return stepTransient{err: err}
	}
	return stepDone{}
}

// fail applies the rollback policy to a failed step: Auto rolls back every
// moved workload, Manual halts for an operator.
func (r *run) fail(ctx context.Context, f stepFailed) error {
	if r.mu.Spec.Rollback == v1alpha1.RollbackManual {
		r.setPhase(v1alpha1.PhaseHalted, f.reason, f.why+"; automatic rollback is off: investigate, then `meshroll rollback "+r.mu.Name+"`")
	} else {
		r.setPhase(v1alpha1.PhaseRollingBack, f.reason, f.why+"; rolling back every moved workload")
	}
	return r.flush(ctx, true)
}
