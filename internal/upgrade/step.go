package upgrade

import (
	"context"
	"fmt"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/plan"
)

// This file holds the engine's side of plan.Next: the state it decides on,
// the intent recorded before a window of moves, and the waits (pause, bake)
// it asks for.

// state is plan's view of the recorded run.
func (r *run) state() plan.State {
	st := &r.mu.Status
	s := plan.State{
		Progress:     progress(st),
		Gates:        waveGates(st, len(r.mu.Spec.Gates)),
		RollbackAuto: r.mu.Spec.Rollback != v1alpha1.RollbackManual,
		Pause:        r.mu.Spec.Strategy.PauseBetweenWaves.Duration,
		Bake:         r.mu.Spec.Strategy.Bake.Duration,
		// Only real failures spend it: transient errors are retried and
		// gone or unmovable workloads are skipped (budget.go).
		MaxFailedPerWave: r.mu.Spec.Strategy.MaxFailedWorkloads,
	}
	if st.LastWaveDoneAt != nil {
		s.LastWaveDone = st.LastWaveDoneAt.Time
	}
	return s
}

// recordIntent marks a window of workloads pending; the caller writes the
// status before sending any of their patches.
func (r *run) recordIntent(wave int, refs []plan.WorkloadRef) {
	st := &r.mu.Status
	if st.Phase != v1alpha1.PhaseMigrating {
		r.setPhase(v1alpha1.PhaseMigrating, v1alpha1.ReasonMigrating, fmt.Sprintf("migrating wave %d", wave))
	}
	if wave != st.CurrentWave {
		st.CurrentWave = wave
		r.event("wave", wave, fmt.Sprintf("wave %d of %d started", wave, st.Waves))
	}
	for _, ref := range refs {
		if i, ok := r.index[ref.String()]; ok && st.Workloads[i].Outcome != v1alpha1.OutcomeSucceeded {
			st.Workloads[i].Outcome = v1alpha1.OutcomePending
		}
	}
	r.dirty = true
}

// wait records a pause or a bake; Step returns its end as the time to
// come back (Run sleeps until then, the controller requeues).
func (r *run) wait(ctx context.Context, phase v1alpha1.Phase, reason string, d plan.Decision) stepResult {
	if r.mu.Status.Phase != phase {
		r.setPhase(phase, reason, d.Reason)
	}
	if err := r.flush(ctx, true); err != nil {
		return stepTransient{err: err}
	}
	return stepWait{until: d.NotBefore}
}

// pause records an operator's pause (spec.paused) once every move started
// has ended and been recorded; nothing new starts until it is lifted.
func (r *run) pause(ctx context.Context) error {
	r.paused = true
	if !r.pausedByOperator() {
		r.setPhase(v1alpha1.PhasePaused, v1alpha1.ReasonPausedByOperator,
			"paused by an operator (spec.paused); set spec.paused to false to resume")
	}
	return r.flush(ctx, true)
}

// resume leaves an operator's pause once it is lifted; the step that
// follows sets its own phase (gating, baking), a window already recorded
// goes on migrating.
func (r *run) resume() {
	if r.pausedByOperator() {
		r.setPhase(v1alpha1.PhaseMigrating, v1alpha1.ReasonResumed, "resumed by an operator (spec.paused is false)")
	}
}

func (r *run) pausedByOperator() bool {
	st := &r.mu.Status
	if st.Phase != v1alpha1.PhasePaused {
		return false
	}
	for _, c := range st.Conditions {
		if c.Type == v1alpha1.ConditionProgressing {
			return c.Reason == v1alpha1.ReasonPausedByOperator
		}
	}
	return false
}

func (e *Engine) pollEvery() time.Duration {
	if e.PollEvery > 0 {
		return e.PollEvery
	}
	return 2 * time.Second
}
