package upgrade

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/plan"
)

// Freeze selects the workloads of spec from the snapshot, cuts them into
// waves and returns the initial status that records that plan. It refuses a
// spec whose workloads overlap a MeshUpgrade that is still running. The
// restart token is derived from now, so every move of this run writes the
// same value and a resumed run recognises its own writes.
func Freeze(s *inventory.Snapshot, nsLabels map[string]map[string]string, mu *v1alpha1.MeshUpgrade, others []v1alpha1.MeshUpgrade, now time.Time) (v1alpha1.MeshUpgradeStatus, error) {
	spec := mu.Spec
	if spec.SkipMigrate {
		return freezeWithoutMigration(s, mu, now), nil
	}
	sel, err := selection(spec.Selection, nsLabels)
	if err != nil {
		return v1alpha1.MeshUpgradeStatus{}, err
	}
	picked, err := plan.Select(s, spec.From, spec.To, sel)
	if err != nil {
		return v1alpha1.MeshUpgradeStatus{}, err
	}
	if err := overlap(mu.Name, picked.Moves, others); err != nil {
		return v1alpha1.MeshUpgradeStatus{}, err
	}
	cands := make([]plan.Candidate, 0, len(picked.Moves))
	byRef := make(map[plan.WorkloadRef]plan.Move, len(picked.Moves))
	for _, m := range picked.Moves {
		cands = append(cands, m.Candidate)
		byRef[m.Ref] = m
	}
	wp, err := plan.PlanWaves(cands, wavePolicy(spec.Strategy))
	if err != nil {
		return v1alpha1.MeshUpgradeStatus{}, fmt.Errorf("invalid strategy: %w", err)
	}
	t := metav1.NewTime(now)
	st := v1alpha1.MeshUpgradeStatus{
		ObservedGeneration: mu.Generation,
		Phase:              v1alpha1.PhasePending,
		Message:            fmt.Sprintf("planned %d workload(s) in %d wave(s); %d need manual action", len(cands)-len(wp.Skipped), len(wp.Waves), len(wp.Skipped)),
		// Sub-second: two upgrades started in the same second (a quick
		// run, then its reverse) must not share a token, or the second
		// takes the first's marks for its own and restarts nothing.
		RestartToken: now.UTC().Format(time.RFC3339Nano),
		Waves:        len(wp.Waves),
		StartedAt:    &t,
	}
	firstWave := map[string]int{}
	for _, w := range wp.Waves {
		for _, r := range w.Workloads {
			m := byRef[r]
			st.Workloads = append(st.Workloads, v1alpha1.WorkloadStatus{
				Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Wave: w.Index,
				Mechanism: v1alpha1.Mechanism(m.Mechanism), Via: m.Via, Pods: m.Pods,
			})
			key := labelKey(m)
			if _, seen := firstWave[key]; !seen && key != "" {
				firstWave[key] = w.Index
			}
		}
	}
	for _, c := range wp.Skipped {
		st.Skipped = append(st.Skipped, v1alpha1.SkippedWorkload{Kind: c.Ref.Kind, Namespace: c.Ref.Namespace, Name: c.Ref.Name, Reason: c.Reason})
	}
	for _, n := range picked.Namespaces {
		if w, ok := firstWave["ns/"+n.Name]; ok {
			st.Namespaces = append(st.Namespaces, v1alpha1.LabelMove{Name: n.Name, From: n.From, To: n.To, Wave: w})
		}
	}
	for _, g := range picked.Tags {
		if w, ok := firstWave["tag/"+g.Name]; ok {
			st.Tags = append(st.Tags, v1alpha1.LabelMove{Name: g.Name, From: g.From, To: g.To, Wave: w})
		}
	}
	if spec.MoveTags {
		// The tags step moves the rest after the last wave's bake; they are
		// recorded now, so a rollback points them back even after a kill.
		for _, t := range s.Tags {
			if t.Revision == spec.From && !slices.ContainsFunc(st.Tags, func(m v1alpha1.LabelMove) bool { return m.Name == t.Name }) {
				st.Tags = append(st.Tags, v1alpha1.LabelMove{Name: t.Name, From: spec.From, To: spec.To})
			}
		}
	}
	st.Counts = v1alpha1.Tally(st.Workloads)
	return st, nil
}

// labelKey names the namespace relabel or tag move a workload's move needs.
func labelKey(m plan.Move) string {
	switch m.Mechanism {
	case plan.MechanismNamespace:
		return "ns/" + m.Ref.Namespace
	case plan.MechanismTag:
		return "tag/" + m.Via
	}
	return ""
}

// selection turns the API's selection into plan's.
func selection(s v1alpha1.Selection, nsLabels map[string]map[string]string) (plan.Selection, error) {
	out := plan.Selection{
		Namespaces: s.Namespaces, ExcludeNamespaces: s.ExcludeNamespaces,
		ExcludeWorkloads: s.ExcludeWorkloads, NamespaceLabels: nsLabels,
	}
	if s.NamespaceSelector != nil {
		ls, err := metav1.LabelSelectorAsSelector(s.NamespaceSelector)
		if err != nil {
			return out, fmt.Errorf("invalid namespace selector: %w", err)
		}
		out.NamespaceSelector = ls
	}
	for _, w := range s.ExcludeWorkloads {
		kind, rest, ok := strings.Cut(w, " ")
		if ns, name, ok2 := strings.Cut(rest, "/"); !ok || !ok2 || kind == "" || ns == "" || name == "" {
			return out, fmt.Errorf("excluded workload %q is not \"Kind namespace/name\"", w)
		}
	}
	return out, nil
}

func wavePolicy(s v1alpha1.Strategy) plan.WavePolicy {
	p := plan.WavePolicy{Parallelism: s.Parallelism, Ordering: plan.Ordering{First: s.First, Last: s.Last}}
	if p.Parallelism == 0 {
		// "Pick for me": Start resolves it once the plan's size is known,
		// and cutting waves does not depend on it.
		p.Parallelism = 1
	}
	for _, w := range s.Waves {
		p.Waves = append(p.Waves, plan.WaveSize{Count: w.Count, Percent: w.Percent})
	}
	return p
}

// overlap refuses to plan workloads another unfinished MeshUpgrade covers:
// two engines restarting the same Deployment would fight over its template.
func overlap(name string, moves []plan.Move, others []v1alpha1.MeshUpgrade) error {
	mine := make(map[string]bool, len(moves))
	for _, m := range moves {
		mine[m.Ref.String()] = true
	}
	var errs []error
	for _, o := range others {
		if o.Name == name || o.Status.Phase.Final() {
			continue
		}
		var shared []string
		for _, w := range o.Status.Workloads {
			if mine[w.Ref()] {
				shared = append(shared, w.Ref())
			}
		}
		if len(shared) > 0 {
			slices.Sort(shared)
			errs = append(errs, fmt.Errorf("MeshUpgrade %q (phase %s) is already migrating %d of these workloads (%s); wait for it to finish or run `meshroll rollback %s`",
				o.Name, o.Status.Phase, len(shared), strings.Join(shared[:min(3, len(shared))], ", "), o.Name))
		}
	}
	return errors.Join(errs...)
}

// wavePlan rebuilds plan's view of the frozen plan from the status.
func wavePlan(st *v1alpha1.MeshUpgradeStatus, parallelism int) plan.WavePlan {
	wp := plan.WavePlan{Parallelism: parallelism}
	for _, s := range st.Skipped {
		wp.Skipped = append(wp.Skipped, plan.Candidate{Ref: plan.WorkloadRef{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}, Reason: s.Reason})
	}
	for _, w := range st.Workloads {
		if w.Wave < 1 {
			continue // the CRD refuses it; a hand-edited status must not crash the engine
		}
		for len(wp.Waves) < w.Wave {
			wp.Waves = append(wp.Waves, plan.Wave{Index: len(wp.Waves) + 1})
		}
		wp.Waves[w.Wave-1].Workloads = append(wp.Waves[w.Wave-1].Workloads, plan.WorkloadRef{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name})
	}
	return wp
}

// progress is plan's view of the recorded outcomes.
func progress(st *v1alpha1.MeshUpgradeStatus) plan.Progress {
	p := plan.Progress{Done: make(map[string]plan.Outcome, len(st.Workloads))}
	for _, w := range st.Workloads {
		switch w.Outcome {
		case v1alpha1.OutcomePending:
			p.Done[w.Ref()] = plan.OutcomePending
		case v1alpha1.OutcomeSucceeded:
			p.Done[w.Ref()] = plan.OutcomeSucceeded
		case v1alpha1.OutcomeFailed:
			p.Done[w.Ref()] = plan.OutcomeFailed
		case v1alpha1.OutcomeRolledBack:
			// Before the run rolls back as a whole, a rolled-back workload
			// is one that failed within the budget and was put back.
			p.Done[w.Ref()] = plan.OutcomeReverted
		case v1alpha1.OutcomeRollbackFailed:
			p.Done[w.Ref()] = plan.OutcomeFailed
		case v1alpha1.OutcomeSkipped:
			p.Done[w.Ref()] = plan.OutcomeSkipped
		}
	}
	return p
}

// waveGates is plan's view of the gate records: per wave, when readiness and
// every configured gate last passed right after the wave's moves, and whether
// they passed again at the end of its bake. A run of the gates counts only
// when every gate has a verdict (readiness + gates) and the latest verdict of
// each passed.
func waveGates(st *v1alpha1.MeshUpgradeStatus, gates int) map[int]plan.WaveGate {
	type key struct {
		wave      int
		afterBake bool
	}
	latest := map[key]map[string]v1alpha1.GateResult{}
	for _, g := range st.Gates {
		k := key{g.Wave, g.AfterBake}
		if latest[k] == nil {
			latest[k] = map[string]v1alpha1.GateResult{}
		}
		latest[k][g.Name] = g
	}
	passed := func(k key) (time.Time, bool) {
		byName := latest[k]
		var at time.Time
		ok := len(byName) >= gates+1 // readiness + configured gates
		for _, g := range byName {
			ok = ok && g.Passed
			if g.At.After(at) {
				at = g.At.Time
			}
		}
		return at, ok
	}
	out := map[int]plan.WaveGate{}
	for k := range latest {
		if k.afterBake {
			continue
		}
		at, ok := passed(k)
		if !ok {
			continue
		}
		_, baked := passed(key{k.wave, true})
		out[k.wave] = plan.WaveGate{Passed: at, Baked: baked}
	}
	return out
}

// freezeWithoutMigration is the plan of a run that skips the migrate step:
// no workload, no wave; the tags step's moves (with spec.moveTags, every tag
// that points at From) are recorded now, like a full run's.
func freezeWithoutMigration(s *inventory.Snapshot, mu *v1alpha1.MeshUpgrade, now time.Time) v1alpha1.MeshUpgradeStatus {
	t := metav1.NewTime(now)
	st := v1alpha1.MeshUpgradeStatus{
		ObservedGeneration: mu.Generation,
		Phase:              v1alpha1.PhasePending,
		Message:            "planned without the migrate step: no workload moves",
		RestartToken:       now.UTC().Format(time.RFC3339Nano),
		StartedAt:          &t,
	}
	if mu.Spec.MoveTags {
		for _, tag := range s.Tags {
			if tag.Revision == mu.Spec.From {
				st.Tags = append(st.Tags, v1alpha1.LabelMove{Name: tag.Name, From: mu.Spec.From, To: mu.Spec.To})
			}
		}
	}
	return st
}
