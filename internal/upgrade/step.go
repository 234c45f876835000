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

// wait records a pause or a bake; the loop then sleeps until it ends.
func (r *run) wait(ctx context.Context, phase v1alpha1.Phase, reason string, d plan.Decision) stepResult {
	if r.mu.Status.Phase != phase {
		r.setPhase(phase, reason, d.Reason)
	}
	if err := r.flush(ctx, true); err != nil {
		return stepTransient{err: err}
	}
	return stepWait{until: d.NotBefore}
}

// sleep waits until until, rereading the MeshUpgrade every PollEvery so that
// a rollback requested meanwhile (by `meshroll rollback`) ends the wait at
// once instead of after a long soak.
func (r *run) sleep(ctx context.Context, until time.Time) error {
	for {
		left := until.Sub(r.now())
		if left <= 0 {
			return nil
		}
		select {
		case <-time.After(min(left, r.pollEvery())):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		fresh, err := r.Store.Get(ctx, r.mu.Name)
		if err != nil {
			continue // a failed read only delays noticing a request
		}
		r.mu.ObjectMeta, r.mu.Spec = fresh.ObjectMeta, fresh.Spec
		if r.mu.Spec.RollbackRequested {
			return nil
		}
	}
}

func (r *run) pollEvery() time.Duration {
	if r.PollEvery > 0 {
		return r.PollEvery
	}
	return 2 * time.Second
}
