package report

import (
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// This file turns a MeshUpgrade into the plain facts both renderers print, so
// the text and HTML reports can never disagree about what happened.

// view is the renderer-neutral digest of one MeshUpgrade.
type view struct {
	Name    string
	From    string
	To      string
	Phase   v1alpha1.Phase
	Message string

	Started   *time.Time
	Completed *time.Time
	// Duration is Completed-Started, or now-Started for a run still going
	// when the renderer knows the time; HasDuration says whether it is set.
	Duration    time.Duration
	HasDuration bool

	Waves       int
	CurrentWave int
	Counts      v1alpha1.Counts
	// VMs tallies the workloads that are VMs (mechanism VM), which Counts
	// includes: the VMs move in the same waves as the pods.
	VMs v1alpha1.Counts

	WaveRows   []waveRow
	Gates      []v1alpha1.GateResult
	Failures   []v1alpha1.WorkloadStatus
	Skipped    []v1alpha1.SkippedWorkload
	Namespaces []v1alpha1.LabelMove
	Tags       []v1alpha1.LabelMove
	History    []v1alpha1.Event
}

// waveRow sums up one wave of the frozen plan.
type waveRow struct {
	Wave       int
	Workloads  int
	Pods       int
	Succeeded  int
	Failed     int
	RolledBack int
	Pending    int
	// Slowest is the longest forward rollout in the wave and SlowestRef the
	// workload that took it; zero when nothing rolled out yet.
	Slowest    time.Duration
	SlowestRef string
	Mechanisms []string
	Current    bool
}

// newView digests u. now is used only for the duration of a run that has not
// completed; pass the zero time when the caller does not know it (the text
// report stays deterministic that way).
func newView(u *v1alpha1.MeshUpgrade, now time.Time) view {
	st := u.Status
	v := view{
		Name:        u.Name,
		From:        u.Spec.From,
		To:          u.Spec.To,
		Phase:       st.Phase,
		Message:     st.Message,
		Waves:       st.Waves,
		CurrentWave: st.CurrentWave,
		Counts:      st.Counts,
		Gates:       st.Gates,
		Skipped:     st.Skipped,
		Namespaces:  st.Namespaces,
		Tags:        st.Tags,
		History:     byTime(st.History),
	}
	if v.Phase == "" {
		v.Phase = v1alpha1.PhasePending
	}
	if st.StartedAt != nil {
		t := st.StartedAt.Time
		v.Started = &t
	}
	if st.CompletedAt != nil {
		t := st.CompletedAt.Time
		v.Completed = &t
	}
	switch {
	case v.Started != nil && v.Completed != nil:
		v.Duration, v.HasDuration = v.Completed.Sub(*v.Started), true
	case v.Started != nil && !now.IsZero() && !v.Phase.Final():
		v.Duration, v.HasDuration = now.Sub(*v.Started), true
	}
	if v.Duration < 0 {
		v.Duration = 0
	}
	if v.Counts == (v1alpha1.Counts{}) && len(st.Workloads) > 0 {
		// An engine that has planned but not yet tallied still deserves
		// honest numbers in the report.
		v.Counts = v1alpha1.Tally(st.Workloads)
	}
	v.VMs = VMCounts(st.Workloads)
	v.WaveRows = waveRows(st.Workloads, st.Waves, st.CurrentWave, v.Phase)
	for _, w := range st.Workloads {
		if w.Outcome == v1alpha1.OutcomeFailed || w.Outcome == v1alpha1.OutcomeRollbackFailed {
			v.Failures = append(v.Failures, w)
		}
	}
	return v
}

// waveRows groups the plan by wave. Waves the plan announces but holds no
// workload for still get a row, so the table's wave numbers have no holes.
func waveRows(ws []v1alpha1.WorkloadStatus, waves, current int, phase v1alpha1.Phase) []waveRow {
	n := waves
	for _, w := range ws {
		n = max(n, w.Wave)
	}
	if n == 0 {
		return nil
	}
	rows := make([]waveRow, n)
	for i := range rows {
		rows[i].Wave = i + 1
		rows[i].Current = i+1 == current && !phase.Final()
	}
	for _, w := range ws {
		if w.Wave < 1 {
			continue
		}
		r := &rows[w.Wave-1]
		r.Workloads++
		r.Pods += w.Pods
		switch w.Outcome {
		case v1alpha1.OutcomeSucceeded:
			r.Succeeded++
		case v1alpha1.OutcomeFailed, v1alpha1.OutcomeRollbackFailed:
			r.Failed++
		case v1alpha1.OutcomeRolledBack:
			r.RolledBack++
		default:
			r.Pending++
		}
		if d := time.Duration(w.RolloutMillis) * time.Millisecond; d > r.Slowest {
			r.Slowest, r.SlowestRef = d, w.Ref()
		}
		if m := string(w.Mechanism); m != "" && !slices.Contains(r.Mechanisms, m) {
			r.Mechanisms = append(r.Mechanisms, m)
		}
	}
	for i := range rows {
		slices.Sort(rows[i].Mechanisms)
	}
	return rows
}

// revisions lists every revision the samples mention in a stable order: From
// first, To second, the rest by name. The chart stacks them in this order so
// the old revision drains at the bottom and the new one fills the top.
func revisions(from, to string, samples []v1alpha1.Sample) []string {
	seen := map[string]bool{}
	for _, s := range samples {
		for r := range s.Pods {
			seen[r] = true
		}
	}
	var rest []string
	for r := range seen {
		if r != from && r != to {
			rest = append(rest, r)
		}
	}
	slices.Sort(rest)
	var out []string
	for _, r := range []string{from, to} {
		if seen[r] {
			out = append(out, r)
		}
	}
	return append(out, rest...)
}

// sortedSamples returns the samples oldest first without touching the
// object's own slice.
func sortedSamples(in []v1alpha1.Sample) []v1alpha1.Sample {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b v1alpha1.Sample) int { return a.At.Time.Compare(b.At.Time) })
	return out
}

// lastEvents returns at most n newest events, oldest first.
func lastEvents(es []v1alpha1.Event, n int) []v1alpha1.Event {
	return es[len(es)-min(n, len(es)):]
}

// oneLine makes cluster-supplied text safe for a terminal table: control
// characters (including ANSI escapes and newlines) would otherwise let a
// workload name or message repaint the operator's screen or break the table.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// formatDuration prints a duration the way operators read them: whole
// seconds, or milliseconds below one second.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// VMCounts tallies the workloads moved by mechanism VM (meshroll-agent VMs).
func VMCounts(ws []v1alpha1.WorkloadStatus) v1alpha1.Counts {
	var vms []v1alpha1.WorkloadStatus
	for _, w := range ws {
		if w.Mechanism == v1alpha1.MechanismVM {
			vms = append(vms, w)
		}
	}
	return v1alpha1.Tally(vms)
}

// byTime orders a run's history by when each event happened. The engine
// appends an event when it records it, which is not always when it
// happened: steps left out of the run (Skipped) are recorded with the time
// the plan was frozen, after the install step's first events.
func byTime(h []v1alpha1.Event) []v1alpha1.Event {
	out := slices.Clone(h)
	slices.SortStableFunc(out, func(a, b v1alpha1.Event) int { return a.At.Compare(b.At.Time) })
	return out
}
