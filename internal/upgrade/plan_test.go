package upgrade

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/plan"
)

func TestFreeze(t *testing.T) {
	const (
		nsM  = v1alpha1.MechanismNamespace
		tagM = v1alpha1.MechanismTag
		podM = v1alpha1.MechanismPod
		rstM = v1alpha1.Mechanism(plan.MechanismRestart)
	)
	planned := func(ns, name string, wave int, m v1alpha1.Mechanism, via string) v1alpha1.WorkloadStatus {
		return v1alpha1.WorkloadStatus{Kind: "Deployment", Namespace: ns, Name: name, Wave: wave, Mechanism: m, Via: via, Pods: 2}
	}
	skipped := []v1alpha1.SkippedWorkload{
		{Kind: "Job", Namespace: "c", Name: "migrate", Reason: "Job pods are never restarted"},
		{Kind: "Job", Namespace: "e", Name: "cleanup", Reason: "Job pods are never restarted"},
	}
	tests := []struct {
		name     string
		mu       *v1alpha1.MeshUpgrade
		nsLabels map[string]map[string]string
		others   []v1alpha1.MeshUpgrade

		wantWorkloads  []v1alpha1.WorkloadStatus
		wantSkipped    []v1alpha1.SkippedWorkload
		wantNamespaces []v1alpha1.LabelMove
		wantTags       []v1alpha1.LabelMove
		wantWaves      int
		wantMessage    string
		wantErr        []string
	}{
		{
			name: "count waves, label moves at the first wave needing them",
			mu:   meshUpgrade("run", sizeCount(1), sizeCount(2)),
			wantWorkloads: []v1alpha1.WorkloadStatus{
				planned("a", "api", 1, nsM, revOld),
				planned("a", "web", 2, nsM, revOld), planned("b", "web", 2, tagM, "prod"),
				planned("c", "pinned", 3, podM, revOld), planned("d", "web", 3, tagM, "prod"),
				planned("f", "late", 4, rstM, revNew),
			},
			wantSkipped: skipped,
			// e's only workload is skipped, so nothing needs e relabelled.
			wantNamespaces: []v1alpha1.LabelMove{{Name: "a", From: revOld, To: revNew, Wave: 1}},
			wantTags:       []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew, Wave: 2}},
			wantWaves:      4,
			wantMessage:    "planned 6 workload(s) in 4 wave(s); 2 need manual action",
		},
		{
			name: "canary namespace first moves its tag in wave 1",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizeCount(1), sizeCount(2))
				mu.Spec.Strategy.First = []string{"d"}
				return mu
			}(),
			wantWorkloads: []v1alpha1.WorkloadStatus{
				planned("d", "web", 1, tagM, "prod"),
				planned("a", "api", 2, nsM, revOld), planned("a", "web", 2, nsM, revOld),
				planned("b", "web", 3, tagM, "prod"), planned("c", "pinned", 3, podM, revOld),
				planned("f", "late", 4, rstM, revNew),
			},
			wantSkipped:    skipped,
			wantNamespaces: []v1alpha1.LabelMove{{Name: "a", From: revOld, To: revNew, Wave: 2}},
			wantTags:       []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew, Wave: 1}},
			wantWaves:      4,
			wantMessage:    "planned 6 workload(s) in 4 wave(s); 2 need manual action",
		},
		{
			name: "percent waves",
			mu:   meshUpgrade("run", sizePercent(50)),
			wantWorkloads: []v1alpha1.WorkloadStatus{
				planned("a", "api", 1, nsM, revOld), planned("a", "web", 1, nsM, revOld), planned("b", "web", 1, tagM, "prod"),
				planned("c", "pinned", 2, podM, revOld), planned("d", "web", 2, tagM, "prod"), planned("f", "late", 2, rstM, revNew),
			},
			wantSkipped:    skipped,
			wantNamespaces: []v1alpha1.LabelMove{{Name: "a", From: revOld, To: revNew, Wave: 1}},
			wantTags:       []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew, Wave: 1}},
			wantWaves:      2,
			wantMessage:    "planned 6 workload(s) in 2 wave(s); 2 need manual action",
		},
		{
			name: "selection with a namespace selector over the full labels",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Selection = v1alpha1.Selection{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "pay"}},
					ExcludeWorkloads:  []string{"Deployment a/web"},
				}
				return mu
			}(),
			nsLabels: map[string]map[string]string{"a": {"team": "pay"}, "b": {"team": "pay"}, "c": {"team": "retail"}},
			// a/web stays behind in a namespace that is relabelled, and the
			// tag prod also serves d, which the selector leaves out.
			wantErr: []string{"moving namespace a would also move 1 workload(s) outside the selection (Deployment a/web)", "moving tag prod would also move 1 workload(s) outside the selection (Deployment d/web)"},
		},
		{
			name: "a final MeshUpgrade over the same workloads does not block",
			mu:   meshUpgrade("run", sizePercent(100)),
			others: []v1alpha1.MeshUpgrade{
				running("done", v1alpha1.PhaseSucceeded, freezeNow, revNew, ws("a", "web", 1, v1alpha1.MechanismNamespace, v1alpha1.OutcomeSucceeded)),
				running("undone", v1alpha1.PhaseRolledBack, freezeNow, revNew, ws("a", "web", 1, v1alpha1.MechanismNamespace, v1alpha1.OutcomeRolledBack)),
				running("halted", v1alpha1.PhaseHalted, freezeNow, revNew, ws("a", "web", 1, v1alpha1.MechanismNamespace, v1alpha1.OutcomeFailed)),
			},
			wantWorkloads: []v1alpha1.WorkloadStatus{
				planned("a", "api", 1, nsM, revOld), planned("a", "web", 1, nsM, revOld), planned("b", "web", 1, tagM, "prod"),
				planned("c", "pinned", 1, podM, revOld), planned("d", "web", 1, tagM, "prod"), planned("f", "late", 1, rstM, revNew),
			},
			wantSkipped:    skipped,
			wantNamespaces: []v1alpha1.LabelMove{{Name: "a", From: revOld, To: revNew, Wave: 1}},
			wantTags:       []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew, Wave: 1}},
			wantWaves:      1,
			wantMessage:    "planned 6 workload(s) in 1 wave(s); 2 need manual action",
		},
		{
			name: "its own earlier record and disjoint runs do not block",
			mu:   meshUpgrade("run", sizePercent(100)),
			others: []v1alpha1.MeshUpgrade{
				running("run", v1alpha1.PhaseMigrating, freezeNow, revNew, ws("a", "web", 1, v1alpha1.MechanismNamespace, v1alpha1.OutcomePending)),
				running("elsewhere", v1alpha1.PhaseMigrating, freezeNow, revNew, ws("z", "web", 1, v1alpha1.MechanismPod, v1alpha1.OutcomePending)),
			},
			wantWorkloads: []v1alpha1.WorkloadStatus{
				planned("a", "api", 1, nsM, revOld), planned("a", "web", 1, nsM, revOld), planned("b", "web", 1, tagM, "prod"),
				planned("c", "pinned", 1, podM, revOld), planned("d", "web", 1, tagM, "prod"), planned("f", "late", 1, rstM, revNew),
			},
			wantSkipped:    skipped,
			wantNamespaces: []v1alpha1.LabelMove{{Name: "a", From: revOld, To: revNew, Wave: 1}},
			wantTags:       []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew, Wave: 1}},
			wantWaves:      1,
			wantMessage:    "planned 6 workload(s) in 1 wave(s); 2 need manual action",
		},
		{
			name: "a running MeshUpgrade sharing workloads is refused",
			mu:   meshUpgrade("run", sizePercent(100)),
			others: []v1alpha1.MeshUpgrade{
				running("older", v1alpha1.PhaseGating, freezeNow, revNew,
					ws("d", "web", 1, v1alpha1.MechanismTag, v1alpha1.OutcomeSucceeded),
					ws("a", "web", 1, v1alpha1.MechanismNamespace, v1alpha1.OutcomeSucceeded),
					ws("z", "other", 1, v1alpha1.MechanismPod, v1alpha1.OutcomeSucceeded)),
			},
			wantErr: []string{`MeshUpgrade "older" (phase Gating)`, "2 of these workloads (Deployment a/web, Deployment d/web)", "meshroll rollback older"},
		},
		{
			name: "a paused MeshUpgrade is not final either",
			mu:   meshUpgrade("run", sizePercent(100)),
			others: []v1alpha1.MeshUpgrade{
				running("paused", v1alpha1.PhasePaused, freezeNow, revNew, ws("c", "pinned", 2, v1alpha1.MechanismPod, "")),
			},
			wantErr: []string{`MeshUpgrade "paused"`, "Deployment c/pinned"},
		},
		{
			name: "excluded workload without a kind",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Selection.ExcludeWorkloads = []string{"a/web"}
				return mu
			}(),
			wantErr: []string{`excluded workload "a/web" is not "Kind namespace/name"`},
		},
		{
			name: "excluded workload without a namespace",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Selection.ExcludeWorkloads = []string{"Deployment web"}
				return mu
			}(),
			wantErr: []string{`excluded workload "Deployment web"`},
		},
		{
			name: "excluded workload with an empty name",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Selection.ExcludeWorkloads = []string{"Deployment a/"}
				return mu
			}(),
			wantErr: []string{`excluded workload "Deployment a/"`},
		},
		{
			name: "invalid namespace selector",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Selection.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}
				return mu
			}(),
			wantErr: []string{"invalid namespace selector"},
		},
		{
			name: "invalid strategy",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Strategy.Parallelism = -1
				return mu
			}(),
			wantErr: []string{"invalid strategy", "parallelism"},
		},
		{
			name: "parallelism 0 is left to Start",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.Strategy.Parallelism = 0
				return mu
			}(),
			wantWorkloads: []v1alpha1.WorkloadStatus{
				planned("a", "api", 1, nsM, revOld), planned("a", "web", 1, nsM, revOld),
				planned("b", "web", 1, tagM, "prod"), planned("c", "pinned", 1, podM, revOld),
				planned("d", "web", 1, tagM, "prod"), planned("f", "late", 1, rstM, revNew),
			},
			wantSkipped:    skipped,
			wantNamespaces: []v1alpha1.LabelMove{{Name: "a", From: revOld, To: revNew, Wave: 1}},
			wantTags:       []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew, Wave: 1}},
			wantWaves:      1,
			wantMessage:    "planned 6 workload(s) in 1 wave(s); 2 need manual action",
		},
		{
			name: "selection errors surface",
			mu: func() *v1alpha1.MeshUpgrade {
				mu := meshUpgrade("run", sizePercent(100))
				mu.Spec.To = "1-25-1"
				return mu
			}(),
			wantErr: []string{`"1-25-1" is not installed`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Freeze(meshSnapshot(), tc.nsLabels, tc.mu, tc.others, freezeNow)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Freeze() = %+v, want an error", st.Workloads)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Freeze() error = %q, want it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Freeze() error = %v", err)
			}
			if diff := cmp.Diff(tc.wantWorkloads, st.Workloads); diff != "" {
				t.Errorf("workloads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSkipped, st.Skipped, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNamespaces, st.Namespaces, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTags, st.Tags, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			if st.Waves != tc.wantWaves {
				t.Errorf("Waves = %d, want %d", st.Waves, tc.wantWaves)
			}
			if st.Message != tc.wantMessage {
				t.Errorf("Message = %q, want %q", st.Message, tc.wantMessage)
			}
			if want := (v1alpha1.Counts{Total: len(tc.wantWorkloads), Pending: len(tc.wantWorkloads)}); st.Counts != want {
				t.Errorf("Counts = %+v, want %+v", st.Counts, want)
			}
		})
	}
}

// TestFreezeRunFields checks what every frozen status starts with: the
// restart token and start time come from now, in UTC, so every move of the
// run writes the same token.
func TestFreezeRunFields(t *testing.T) {
	mu := meshUpgrade("run", sizePercent(100))
	st, err := Freeze(meshSnapshot(), nil, mu, nil, freezeNow)
	if err != nil {
		t.Fatalf("Freeze() error = %v", err)
	}
	if st.RestartToken != "2025-03-01T10:00:00Z" {
		t.Errorf("RestartToken = %q, want the UTC RFC 3339 time of now", st.RestartToken)
	}
	if st.StartedAt == nil || !st.StartedAt.Time.Equal(freezeNow) {
		t.Errorf("StartedAt = %v, want %v", st.StartedAt, freezeNow)
	}
	if st.Phase != v1alpha1.PhasePending || st.ObservedGeneration != mu.Generation {
		t.Errorf("Phase, ObservedGeneration = %s, %d; want Pending, %d", st.Phase, st.ObservedGeneration, mu.Generation)
	}
	if st.CurrentWave != 0 || len(st.Gates) != 0 {
		t.Errorf("a fresh plan carries run progress: CurrentWave %d, Gates %v", st.CurrentWave, st.Gates)
	}
	later, err := Freeze(meshSnapshot(), nil, mu, nil, freezeNow.Add(time.Second))
	if err != nil {
		t.Fatalf("Freeze() error = %v", err)
	}
	if later.RestartToken == st.RestartToken {
		t.Errorf("runs a second apart share RestartToken %q", st.RestartToken)
	}
	// An upgrade and its reverse started within the same second (seen in
	// TestDefect2RollbackRefused): the second must not find its own token.
	soon, err := Freeze(meshSnapshot(), nil, mu, nil, freezeNow.Add(time.Millisecond))
	if err != nil {
		t.Fatalf("Freeze() error = %v", err)
	}
	if soon.RestartToken == st.RestartToken {
		t.Errorf("runs a millisecond apart share RestartToken %q", st.RestartToken)
	}
}

// TestWavePlanMatchesFreeze rebuilds plan's view from a frozen status: it
// must be the plan PlanWaves cut, so a resumed run continues the same plan.
func TestWavePlanMatchesFreeze(t *testing.T) {
	mu := meshUpgrade("run", sizeCount(1), sizeCount(2))
	st, err := Freeze(meshSnapshot(), nil, mu, nil, freezeNow)
	if err != nil {
		t.Fatalf("Freeze() error = %v", err)
	}
	ref := func(kind, ns, name string) plan.WorkloadRef {
		return plan.WorkloadRef{Kind: kind, Namespace: ns, Name: name}
	}
	dep := func(ns, name string) plan.WorkloadRef { return ref("Deployment", ns, name) }
	want := plan.WavePlan{
		Parallelism: 2,
		Waves: []plan.Wave{
			{Index: 1, Workloads: []plan.WorkloadRef{dep("a", "api")}},
			{Index: 2, Workloads: []plan.WorkloadRef{dep("a", "web"), dep("b", "web")}},
			{Index: 3, Workloads: []plan.WorkloadRef{dep("c", "pinned"), dep("d", "web")}},
			{Index: 4, Workloads: []plan.WorkloadRef{dep("f", "late")}},
		},
		Skipped: []plan.Candidate{
			{Ref: ref("Job", "c", "migrate"), Reason: "Job pods are never restarted"},
			{Ref: ref("Job", "e", "cleanup"), Reason: "Job pods are never restarted"},
		},
	}
	if diff := cmp.Diff(want, wavePlan(&st, 2)); diff != "" {
		t.Errorf("wavePlan() (-want +got):\n%s", diff)
	}
}

func TestWavePlanFillsMissingWaves(t *testing.T) {
	st := &v1alpha1.MeshUpgradeStatus{Workloads: []v1alpha1.WorkloadStatus{
		ws("a", "x", 1, v1alpha1.MechanismPod, ""),
		ws("a", "y", 3, v1alpha1.MechanismPod, ""),
	}}
	got := wavePlan(st, 1)
	want := []plan.Wave{
		{Index: 1, Workloads: []plan.WorkloadRef{{Kind: "Deployment", Namespace: "a", Name: "x"}}},
		{Index: 2},
		{Index: 3, Workloads: []plan.WorkloadRef{{Kind: "Deployment", Namespace: "a", Name: "y"}}},
	}
	if diff := cmp.Diff(want, got.Waves); diff != "" {
		t.Errorf("wavePlan() waves (-want +got):\n%s", diff)
	}
}

func TestProgress(t *testing.T) {
	st := &v1alpha1.MeshUpgradeStatus{Workloads: []v1alpha1.WorkloadStatus{
		ws("a", "todo", 1, v1alpha1.MechanismPod, ""),
		ws("a", "moving", 1, v1alpha1.MechanismPod, v1alpha1.OutcomePending),
		ws("a", "moved", 1, v1alpha1.MechanismPod, v1alpha1.OutcomeSucceeded),
		ws("a", "broken", 1, v1alpha1.MechanismPod, v1alpha1.OutcomeFailed),
		ws("a", "back", 1, v1alpha1.MechanismPod, v1alpha1.OutcomeRolledBack),
		ws("a", "stuck", 1, v1alpha1.MechanismPod, v1alpha1.OutcomeRollbackFailed),
		ws("a", "gone", 1, v1alpha1.MechanismPod, v1alpha1.OutcomeSkipped),
	}}
	// A rolled-back workload in a forward run failed within the budget and
	// was put back; one that could not be put back is still a failure; a
	// skipped one is never handed out again.
	want := map[string]plan.Outcome{
		"Deployment a/moving": plan.OutcomePending,
		"Deployment a/moved":  plan.OutcomeSucceeded,
		"Deployment a/broken": plan.OutcomeFailed,
		"Deployment a/back":   plan.OutcomeReverted,
		"Deployment a/stuck":  plan.OutcomeFailed,
		"Deployment a/gone":   plan.OutcomeSkipped,
	}
	if diff := cmp.Diff(want, progress(st).Done); diff != "" {
		t.Errorf("progress() (-want +got):\n%s", diff)
	}
}

func TestWaveGates(t *testing.T) {
	at := metav1.NewTime(freezeNow)
	later := metav1.NewTime(freezeNow.Add(time.Minute))
	g := func(wave int, name string, passed bool) v1alpha1.GateResult {
		return v1alpha1.GateResult{Wave: wave, Name: name, Passed: passed, At: at}
	}
	baked := func(r v1alpha1.GateResult) v1alpha1.GateResult {
		r.AfterBake, r.At = true, later
		return r
	}
	passed := plan.WaveGate{Passed: freezeNow}
	tests := []struct {
		name  string
		gates int
		res   []v1alpha1.GateResult
		want  map[int]plan.WaveGate
	}{
		{name: "no verdicts", gates: 1, want: map[int]plan.WaveGate{}},
		{name: "readiness alone without configured gates", gates: 0, res: []v1alpha1.GateResult{g(1, readinessGate, true)}, want: map[int]plan.WaveGate{1: passed}},
		{name: "readiness plus every gate", gates: 2, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", true), g(1, "push-time", true),
		}, want: map[int]plan.WaveGate{1: passed}},
		{name: "a gate not evaluated yet", gates: 2, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", true),
		}, want: map[int]plan.WaveGate{}},
		{name: "readiness failed, so the gates never ran", gates: 1, res: []v1alpha1.GateResult{
			g(1, readinessGate, false),
		}, want: map[int]plan.WaveGate{}},
		{name: "a failed latest verdict is not passed", gates: 1, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", true),
			g(1, readinessGate, true), g(1, "error-rate", false),
		}, want: map[int]plan.WaveGate{}},
		{name: "a passed latest verdict after a failure passes", gates: 1, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", false),
			g(1, readinessGate, true), g(1, "error-rate", true),
		}, want: map[int]plan.WaveGate{1: passed}},
		{name: "waves are judged apart", gates: 1, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", true),
			g(2, readinessGate, true), g(2, "error-rate", false),
			g(3, readinessGate, true),
		}, want: map[int]plan.WaveGate{1: passed}},
		{name: "verdicts after the bake mark it baked, the bake counts from the first", gates: 1, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", true),
			baked(g(1, readinessGate, true)), baked(g(1, "error-rate", true)),
		}, want: map[int]plan.WaveGate{1: {Passed: freezeNow, Baked: true}}},
		{name: "a failed gate after the bake is not baked", gates: 1, res: []v1alpha1.GateResult{
			g(1, readinessGate, true), g(1, "error-rate", true),
			baked(g(1, readinessGate, true)), baked(g(1, "error-rate", false)),
		}, want: map[int]plan.WaveGate{1: passed}},
		{name: "verdicts after a bake alone do not pass the wave", gates: 0, res: []v1alpha1.GateResult{
			baked(g(1, readinessGate, true)),
		}, want: map[int]plan.WaveGate{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := waveGates(&v1alpha1.MeshUpgradeStatus{Gates: tc.res}, tc.gates)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("waveGates() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTally(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []v1alpha1.Outcome
		want     v1alpha1.Counts
	}{
		{name: "empty", want: v1alpha1.Counts{}},
		{name: "not started counts as pending", outcomes: []v1alpha1.Outcome{"", ""}, want: v1alpha1.Counts{Total: 2, Pending: 2}},
		{
			name: "every outcome",
			outcomes: []v1alpha1.Outcome{
				"", v1alpha1.OutcomePending, v1alpha1.OutcomeSucceeded, v1alpha1.OutcomeSucceeded,
				v1alpha1.OutcomeFailed, v1alpha1.OutcomeRollbackFailed, v1alpha1.OutcomeRolledBack,
			},
			want: v1alpha1.Counts{Total: 7, Pending: 2, Succeeded: 2, Failed: 2, RolledBack: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var wss []v1alpha1.WorkloadStatus
			for i, o := range tc.outcomes {
				wss = append(wss, ws("a", string(rune('a'+i)), 1, v1alpha1.MechanismPod, o))
			}
			if got := v1alpha1.Tally(wss); got != tc.want {
				t.Errorf("Tally() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
