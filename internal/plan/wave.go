package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file cuts the data-plane migration into waves and decides, from the
// recorded progress and the current time, what the engine does next. Both are
// pure so that a resumed run (killed CLI, failed-over controller) recomputes
// exactly the same plan and the same next step from the MeshUpgrade status.

// WorkloadRef names a workload whose pods carry sidecars.
type WorkloadRef struct {
	// Kind is the controller kind: Deployment, StatefulSet, DaemonSet, Job,
	// CronJob, ReplicaSet or Pod.
	Kind string `json:"kind"`
	// Namespace holds the workload; every workload kind meshroll moves is
	// namespaced.
	Namespace string `json:"namespace"`
	// Name is the workload's name.
	Name string `json:"name"`
}

// String renders "Kind ns/name"; it is also the key of Progress.Done, so it
// must stay stable across releases.
func (r WorkloadRef) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// Candidate is a workload that runs on the old revision and should move to the
// new one; inventory builds the list, PlanWaves decides when each moves.
type Candidate struct {
	// Ref names the workload.
	Ref WorkloadRef `json:"ref"`
	// Restartable is false for workloads a rollout restart cannot move (Job,
	// bare Pod, OnDelete StatefulSet, CronJob): they are reported, not waved.
	Restartable bool `json:"restartable"`
	// Reason says what an operator should do with a workload that is not
	// restartable; when empty PlanWaves fills in advice for the kind.
	Reason string `json:"reason,omitempty"`
	// Pods is how many pods the workload runs, carried for reports.
	Pods int `json:"pods,omitempty"`
	// Labels are the labels of the workload's namespace, which Ordering
	// selectors match.
	Labels map[string]string `json:"labels,omitempty"`
}

// WaveSize is the size of one wave: exactly one of Count and Percent is set.
type WaveSize struct {
	// Count is an absolute number of workloads.
	Count int `json:"count,omitempty"`
	// Percent is a share of all movable workloads, rounded up and at least
	// one workload, so small meshes still move in small steps.
	Percent int `json:"percent,omitempty"`
}

// Ordering puts risky-to-break-early workloads last and canaries first. Each
// entry is either a namespace name or a namespace label selector "key=value".
// A workload matching both lists goes Last: being late is the safe mistake
// for something declared critical.
type Ordering struct {
	// First lists canary namespaces, migrated before everything else.
	First []string `json:"first,omitempty"`
	// Last lists critical namespaces, migrated after everything else.
	Last []string `json:"last,omitempty"`
}

// WavePolicy is how the user wants workloads moved.
type WavePolicy struct {
	// Waves are the wave sizes in order; the last size repeats until every
	// workload is placed.
	Waves []WaveSize `json:"waves"`
	// Ordering decides which workloads go early and which late.
	Ordering Ordering `json:"ordering,omitempty"`
	// Parallelism is how many workloads of a wave restart at once; at least 1.
	Parallelism int `json:"parallelism"`
}

// Wave is one batch of workloads that must all succeed (and pass the gate
// after them) before the next batch starts.
type Wave struct {
	// Index is 1-based so that 0 never names a real wave in a Decision.
	Index int `json:"index"`
	// Workloads are in migration order.
	Workloads []WorkloadRef `json:"workloads"`
}

// WavePlan is the full, deterministic migration plan of a run.
type WavePlan struct {
	// Waves are executed in order.
	Waves []Wave `json:"waves,omitempty"`
	// Parallelism is copied from the policy so Next needs only the plan.
	Parallelism int `json:"parallelism"`
	// Skipped are workloads a restart cannot move, each with its Reason.
	Skipped []Candidate `json:"skipped,omitempty"`
}

// Ordering groups, in migration order.
const (
	groupFirst = iota
	groupRest
	groupLast
)

// PlanWaves sorts the restartable candidates (First group, the rest, Last
// group; inside a group by namespace, kind and name) and cuts them into waves
// of the policy's sizes. The result depends only on its inputs, never on the
// order of cands. It fails on an invalid policy or on duplicate candidates,
// because Progress is keyed by WorkloadRef.
func PlanWaves(cands []Candidate, p WavePolicy) (WavePlan, error) {
	if err := p.validate(); err != nil {
		return WavePlan{}, err
	}
	type ranked struct {
		ref   WorkloadRef
		group int
	}
	movable := make([]ranked, 0, len(cands))
	var skipped []Candidate
	seen := make(map[WorkloadRef]struct{}, len(cands))
	for _, c := range cands {
		if c.Ref.Kind == "" || c.Ref.Namespace == "" || c.Ref.Name == "" {
			return WavePlan{}, fmt.Errorf("failed to plan waves for workload %q: kind, namespace and name are required", c.Ref.String())
		}
		if _, dup := seen[c.Ref]; dup {
			return WavePlan{}, fmt.Errorf("failed to plan waves for workload %q: listed twice", c.Ref.String())
		}
		seen[c.Ref] = struct{}{}
		if !c.Restartable {
			if c.Reason == "" {
				c.Reason = skipAdvice(c.Ref.Kind)
			}
			skipped = append(skipped, c)
			continue
		}
		g := groupRest
		switch {
		case matchesAny(p.Ordering.Last, c):
			g = groupLast
		case matchesAny(p.Ordering.First, c):
			g = groupFirst
		}
		movable = append(movable, ranked{ref: c.Ref, group: g})
	}
	slices.SortFunc(movable, func(a, b ranked) int {
		if a.group != b.group {
			return a.group - b.group
		}
		return compareRefs(a.ref, b.ref)
	})
	slices.SortFunc(skipped, func(a, b Candidate) int { return compareRefs(a.Ref, b.Ref) })

	plan := WavePlan{Parallelism: p.Parallelism, Skipped: skipped}
	total := len(movable)
	for placed, i := 0, 0; placed < total; i++ {
		size := p.Waves[min(i, len(p.Waves)-1)].resolve(total)
		end := min(placed+size, total)
		w := Wave{Index: i + 1, Workloads: make([]WorkloadRef, 0, end-placed)}
		for _, m := range movable[placed:end] {
			w.Workloads = append(w.Workloads, m.ref)
		}
		plan.Waves = append(plan.Waves, w)
		placed = end
	}
	return plan, nil
}

// validate rejects policies whose meaning would be a guess.
func (p WavePolicy) validate() error {
	var errs []error
	if len(p.Waves) == 0 {
		errs = append(errs, errors.New("at least one wave size is required"))
	}
	for i, s := range p.Waves {
		switch {
		case s.Count < 0 || s.Percent < 0:
			errs = append(errs, fmt.Errorf("wave size %d is negative", i+1))
		case s.Count > 0 && s.Percent > 0:
			errs = append(errs, fmt.Errorf("wave size %d sets both count and percent", i+1))
		case s.Count == 0 && s.Percent == 0:
			errs = append(errs, fmt.Errorf("wave size %d sets neither count nor percent", i+1))
		case s.Percent > 100:
			errs = append(errs, fmt.Errorf("wave size %d is %d%%, above 100%%", i+1, s.Percent))
		}
	}
	if p.Parallelism < 1 {
		errs = append(errs, fmt.Errorf("parallelism %d is below 1", p.Parallelism))
	}
	for _, e := range slices.Concat(p.Ordering.First, p.Ordering.Last) {
		if k, _, sel := strings.Cut(e, "="); e == "" || (sel && k == "") {
			errs = append(errs, fmt.Errorf("ordering entry %q is neither a namespace nor a key=value selector", e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to validate wave policy: %w", err)
	}
	return nil
}

// resolve turns a size into a workload count for total movable workloads.
func (s WaveSize) resolve(total int) int {
	if s.Count > 0 {
		return s.Count
	}
	return max(1, (total*s.Percent+99)/100)
}

// matchesAny reports whether c's namespace is named in entries or its labels
// match one of the key=value selectors there.
func matchesAny(entries []string, c Candidate) bool {
	for _, e := range entries {
		if k, v, sel := strings.Cut(e, "="); sel {
			if got, ok := c.Labels[k]; ok && got == v {
				return true
			}
		} else if e == c.Ref.Namespace {
			return true
		}
	}
	return false
}

// compareRefs orders by namespace, kind, then name.
func compareRefs(a, b WorkloadRef) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// skipAdvice says what to do with a workload a restart cannot move.
func skipAdvice(kind string) string {
	switch kind {
	case "Job":
		return "Job pods are never restarted; let the Job finish, the next one runs on the new revision"
	case "CronJob":
		return "each scheduled run creates fresh pods on the assigned revision; nothing to restart"
	case "Pod":
		return "a bare Pod has no controller to recreate it; delete and re-create it to move it"
	case "StatefulSet":
		return "updateStrategy OnDelete ignores restarts; delete its pods one at a time to move them"
	default:
		return "a rollout restart cannot move this workload; restart its pods by hand"
	}
}

// Outcome is what happened to one workload's migration.
type Outcome string

const (
	// OutcomePending means the migration started but its rollout has no
	// verdict yet (or the run was interrupted); Next hands it out again.
	OutcomePending Outcome = "pending"
	// OutcomeSucceeded means the rollout finished on the new revision.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeFailed means the rollout failed; the run halts or rolls back.
	OutcomeFailed Outcome = "failed"
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
}

// Next decides the next step of a migration from the plan, the recorded
// state and the current time.
//
// A failed workload stops everything: with RollbackAuto the answer is
// "rollback" of every workload this run touched (any recorded outcome,
// including the failed and in-flight ones, since each was assigned the new
// revision) in reverse migration order; otherwise "halt". Without failures
// the waves are walked in order. A wave with unfinished workloads gets a
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
		for _, r := range w.Workloads {
			o, ok := s.Progress.Done[r.String()]
			if !ok {
				continue
			}
			touched = append(touched, r)
			if o == OutcomeFailed {
				failed = append(failed, r)
				if failedWave == 0 {
					failedWave = w.Index
				}
			}
		}
	}
	if len(failed) > 0 {
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
		var todo, unrecorded []WorkloadRef
		started := false
		for _, r := range w.Workloads {
			o, ok := s.Progress.Done[r.String()]
			started = started || ok
			if o != OutcomeSucceeded {
				todo = append(todo, r)
			}
			if !ok {
				unrecorded = append(unrecorded, r)
			}
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
	return Decision{Action: ActionDone,
		Reason: fmt.Sprintf("all %d wave(s) migrated, gated and baked; %d skipped workload(s) need manual action", len(plan.Waves), len(plan.Skipped))}
}

// joinRefs lists refs for a Reason, capped so a mass failure stays readable.
func joinRefs(refs []WorkloadRef) string {
	const shown = 5
	parts := make([]string, 0, shown+1)
	for _, r := range refs[:min(shown, len(refs))] {
		parts = append(parts, r.String())
	}
	if len(refs) > shown {
		parts = append(parts, fmt.Sprintf("and %d more", len(refs)-shown))
	}
	return strings.Join(parts, ", ")
}
