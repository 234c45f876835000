package plan

import (
	"fmt"
	"slices"
	"time"
)

// This file decides, from the frozen wave plan, what the run recorded and the
// current time, the one step the engine takes next. It is pure so that a
// resumed run (killed CLI, failed-over controller) recomputes exactly the same
// next step from the MeshUpgrade status.

// Outcome is what happened to one workload's migration.
type Outcome string

const (
	// OutcomePending means the migration started but its rollout has no
	// verdict yet (or the run was interrupted); Next hands it out again.
	OutcomePending Outcome = "pending"
	// OutcomeSucceeded means the rollout finished on the new revision.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeFailed means the rollout failed for real (not a transient
	// error): within the wave's failure budget the workload is put back on
	// the old revision ("revert") and the wave goes on; beyond it the run
	// halts or rolls back.
	OutcomeFailed Outcome = "failed"
	// OutcomeReverted is a failed workload put back on the old revision;
	// it still counts against its wave's budget.
	OutcomeReverted Outcome = "reverted"
	// OutcomeSkipped means the run leaves the workload alone on purpose:
	// its owner deleted it, or it could no longer be restarted safely. It
	// is not a failure and the wave finishes without it.
	OutcomeSkipped Outcome = "skipped"
)

// Progress is what a run has recorded so far.
type Progress struct {
	// Done maps WorkloadRef.String() to the workload's outcome; a workload
	// not in the map has not been started.
	Done map[string]Outcome `json:"done,omitempty"`
}

// Actions a Decision asks for.
const (
	// ActionMigrate assigns the new revision to Workloads and restarts them.
	ActionMigrate = "migrate"
	// ActionGate checks readiness and runs the gates of wave Wave, right
	// after its moves or, with AfterBake, at the end of its bake.
	ActionGate = "gate"
	// ActionBake waits until NotBefore while wave Wave soaks.
	ActionBake = "bake"
	// ActionPause waits until NotBefore.
	ActionPause = "pause"
	// ActionHalt stops the run for an operator (a failure without auto
	// rollback).
	ActionHalt = "halt"
	// ActionRevert puts Workloads, which failed within their wave's
	// failure budget, back on the old revision; the wave then goes on.
	ActionRevert = "revert"
	// ActionRollback reassigns the previous revision to Workloads and
	// restarts them, in the given order.
	ActionRollback = "rollback"
	// ActionDone means every waved workload succeeded and every wave, the
	// last included, passed its gates and its bake.
	ActionDone = "done"
)

// Decision is the one step the engine takes next.
type Decision struct {
	// Action is one of the Action* constants.
	Action string `json:"action"`
	// Wave is the 1-based wave the step concerns; 0 when none.
	Wave int `json:"wave,omitempty"`
	// Workloads are the workloads to act on, in order.
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	// Record are workloads to record as pending, in one status write,
	// before any of Workloads is written to (intent before write). It is set
	// when a workload of a migrate batch has no recorded intent yet, and
	// then holds the next window of up to Parallelism unrecorded workloads
	// of the wave, so a whole window costs one status write however the
	// moves of the window finish.
	Record []WorkloadRef `json:"record,omitempty"`
	// AfterBake marks the gate run at the end of a wave's bake.
	AfterBake bool `json:"afterBake,omitempty"`
	// Reason explains the decision for an operator.
	Reason string `json:"reason"`
	// NotBefore is when a pause or a bake ends.
	NotBefore time.Time `json:"notBefore,omitzero"`
}

// WaveGate is what the gates recorded for one wave.
type WaveGate struct {
	// Passed is when readiness and every gate passed right after the
	// wave's moves; zero until they have. The bake counts from it.
	Passed time.Time
	// Baked is true once they passed again at the end of the bake.
	Baked bool
}

// State is everything Next reads besides the plan: what the run recorded
// and the timing policy. It is a struct so that new inputs (a requested
// rollback, a failure budget) do not reshuffle every caller.
type State struct {
	// Progress is the recorded outcome of every started workload.
	Progress Progress
	// Gates are the gate records by Wave.Index.
	Gates map[int]WaveGate
	// RollbackAuto rolls back on a failure instead of halting.
	RollbackAuto bool
	// LastWaveDone is when the latest wave finished its gates (and bake);
	// the pause between waves counts from it.
	LastWaveDone time.Time
	// Pause is waited between a wave's end and the next wave's start.
	Pause time.Duration
	// Bake is the soak time after every wave, the last included.
	Bake time.Duration
	// MaxFailedPerWave is how many workloads of one wave may fail (and be
	// reverted) before the run halts or rolls back; 0 stops at the first.
	MaxFailedPerWave int
}

// Next decides the next step of a migration from the plan, the recorded
// state and the current time.
//
// More failed workloads in one wave than MaxFailedPerWave stop everything:
// with RollbackAuto the answer is "rollback" of every workload this run
// touched (any recorded outcome, including the failed and in-flight ones,
// since each was assigned the new revision) in reverse migration order;
// otherwise "halt". Within the budget a failed workload is reverted
// ("revert") before anything else of its wave, and the wave finishes without
// it, as it does without skipped workloads. Otherwise the waves are walked in
// order. A wave with unfinished workloads gets a
// "migrate" of up to Parallelism of them, in-flight ones first because they
// come first in plan order (before a wave that has not started, the pause
// after the previous one must have elapsed). A fully migrated wave must then
// pass its gates ("gate"), soak for Bake ("bake") and pass them again
// ("gate" AfterBake) before anything later happens: every wave, the last
// included, so "done" (and with it tag moves and prune) comes only after
// the last wave's bake. Next keeps answering "rollback" after a rollback
// ran; the caller records that the run is over.
func Next(plan WavePlan, s State, now time.Time) Decision {
	var failed, touched []WorkloadRef
	failedWave := 0
	for _, w := range plan.Waves {
		var inWave []WorkloadRef
		for _, r := range w.Workloads {
			o, ok := s.Progress.Done[r.String()]
			if !ok {
				continue
			}
			touched = append(touched, r)
			if o == OutcomeFailed || o == OutcomeReverted {
				inWave = append(inWave, r)
			}
		}
		failed = append(failed, inWave...)
		if failedWave == 0 && len(inWave) > max(0, s.MaxFailedPerWave) {
			failedWave = w.Index
		}
	}
	if failedWave > 0 {
		names := joinRefs(failed)
		if s.RollbackAuto {
			slices.Reverse(touched)
			return Decision{Action: ActionRollback, Wave: failedWave, Workloads: touched,
				Reason: fmt.Sprintf("wave %d failed (%s); rolling back %d workload(s) moved in this run, newest first", failedWave, names, len(touched))}
		}
		return Decision{Action: ActionHalt, Wave: failedWave, Workloads: failed,
			Reason: fmt.Sprintf("wave %d failed (%s); automatic rollback is off, so the run stops for an operator", failedWave, names)}
	}

	parallel := max(plan.Parallelism, 1)
	for i, w := range plan.Waves {
		var todo, unrecorded, revert []WorkloadRef
		started := false
		for _, r := range w.Workloads {
			o, ok := s.Progress.Done[r.String()]
			started = started || ok
			switch o {
			case OutcomeSucceeded, OutcomeSkipped, OutcomeReverted:
			case OutcomeFailed:
				revert = append(revert, r)
			default:
				todo = append(todo, r)
			}
			if !ok {
				unrecorded = append(unrecorded, r)
			}
		}
		if len(revert) > 0 {
			return Decision{Action: ActionRevert, Wave: w.Index, Workloads: revert,
				Reason: fmt.Sprintf("wave %d: %s failed within the budget of %d per wave; putting it back on the old revision", w.Index, joinRefs(revert), s.MaxFailedPerWave)}
		}
		if len(todo) > 0 {
			// The pause sits between waves: once a wave has started, a
			// LastWaveDone that is really the end of the previous batch
			// must not stall it.
			if until := s.LastWaveDone.Add(s.Pause); i > 0 && !started && !s.LastWaveDone.IsZero() && now.Before(until) {
				prev := plan.Waves[i-1]
				return Decision{Action: ActionPause, Wave: w.Index, NotBefore: until,
					Reason: fmt.Sprintf("pausing %s between waves %d and %d", s.Pause, prev.Index, w.Index)}
			}
			batch := todo[:min(parallel, len(todo))]
			d := Decision{Action: ActionMigrate, Wave: w.Index, Workloads: slices.Clone(batch),
				Reason: fmt.Sprintf("wave %d: migrating %d of %d remaining workload(s)", w.Index, len(batch), len(todo))}
			if _, ok := s.Progress.Done[batch[len(batch)-1].String()]; !ok {
				// Recorded workloads are a prefix of the wave (windows are
				// recorded in plan order), so the batch needs a record
				// exactly when its last workload has none.
				d.Record = slices.Clone(unrecorded[:min(parallel, len(unrecorded))])
			}
			return d
		}
		g := s.Gates[w.Index]
		next := "the run ends"
		if i+1 < len(plan.Waves) {
			next = fmt.Sprintf("wave %d starts", plan.Waves[i+1].Index)
		}
		if g.Passed.IsZero() {
			return Decision{Action: ActionGate, Wave: w.Index, Workloads: slices.Clone(w.Workloads),
				Reason: fmt.Sprintf("wave %d finished; readiness and its gates must pass before %s", w.Index, next)}
		}
		if s.Bake <= 0 {
			continue
		}
		if until := g.Passed.Add(s.Bake); now.Before(until) {
			return Decision{Action: ActionBake, Wave: w.Index, NotBefore: until,
				Reason: fmt.Sprintf("wave %d passed its gates; baking %s before %s", w.Index, s.Bake, next)}
		}
		if !g.Baked {
			return Decision{Action: ActionGate, Wave: w.Index, Workloads: slices.Clone(w.Workloads), AfterBake: true,
				Reason: fmt.Sprintf("wave %d baked %s; readiness and its gates must pass again before %s", w.Index, s.Bake, next)}
		}
	}
	gated := "gated"
	if s.Bake > 0 {
		gated = "gated, baked and gated again"
	}
	skipped, reverted := len(plan.Skipped), 0
	for _, o := range s.Progress.Done {
		switch o {
		case OutcomeSkipped:
			skipped++
		case OutcomeReverted:
			reverted++
		}
	}
	reason := fmt.Sprintf("all %d wave(s) migrated and %s; %d skipped workload(s) need manual action", len(plan.Waves), gated, skipped)
	if reverted > 0 {
		reason += fmt.Sprintf("; %d failed within the budget and run the old revision again", reverted)
	}
	return Decision{Action: ActionDone, Reason: reason}
}
