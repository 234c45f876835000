package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// This file cuts the data-plane migration into waves (wave_next.go decides,
// from the recorded progress and the current time, what the engine does
// next). Both are pure so that a resumed run (killed CLI, failed-over
// controller) recomputes exactly the same plan and the same next step from
// the MeshUpgrade status.

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
