package report

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// TestOneLine checks terminal-hostile characters are neutralised.
func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"two\nlines\ttab", "two lines tab"},
		{"\x1b[31mred", "\uFFFD[31mred"},
		{"  padded\r\n", "padded"},
		{"bell\x07", "bell\uFFFD"},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestClasses checks the colour families of phases, outcomes and events.
func TestClasses(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{phaseClass(v1alpha1.PhaseSucceeded), "ok"},
		{phaseClass(v1alpha1.PhaseRolledBack), "bad"},
		{phaseClass(v1alpha1.PhaseHalted), "bad"},
		{phaseClass(v1alpha1.PhaseRollingBack), "warn"},
		{phaseClass(v1alpha1.PhasePaused), "warn"},
		{phaseClass(v1alpha1.PhaseMigrating), "run"},
		{phaseClass(v1alpha1.PhaseGating), "run"},
		{phaseClass(v1alpha1.PhasePending), "idle"},
		{phaseClass(""), "idle"},
		{outcomeClass(v1alpha1.OutcomeSucceeded), "ok"},
		{outcomeClass(v1alpha1.OutcomeFailed), "bad"},
		{outcomeClass(v1alpha1.OutcomeRollbackFailed), "bad"},
		{outcomeClass(v1alpha1.OutcomeRolledBack), "warn"},
		{outcomeClass(""), "idle"},
		{eventClass("GateFailed"), "bad"},
		{eventClass("Halted"), "bad"},
		{eventClass("RollbackStarted"), "warn"},
		{eventClass("RolledBack"), "warn"},
		{eventClass("GatePassed"), "ok"},
		{eventClass("Succeeded"), "ok"},
		{eventClass("WaveStarted"), "run"},
	} {
		if tc.got != tc.want {
			t.Errorf("got class %q, want %q", tc.got, tc.want)
		}
	}
}

// TestWaveRows checks per-wave tallies, the slowest rollout and the current
// wave marker.
func TestWaveRows(t *testing.T) {
	ws := []v1alpha1.WorkloadStatus{
		{Kind: "Deployment", Namespace: "a", Name: "x", Wave: 1, Mechanism: v1alpha1.MechanismPod, Pods: 2, Outcome: v1alpha1.OutcomeSucceeded, RolloutMillis: 1500},
		{Kind: "Deployment", Namespace: "a", Name: "y", Wave: 1, Mechanism: v1alpha1.MechanismTag, Pods: 1, Outcome: v1alpha1.OutcomeFailed, RolloutMillis: 9000},
		{Kind: "DaemonSet", Namespace: "b", Name: "z", Wave: 3, Mechanism: v1alpha1.MechanismPod, Pods: 5},
	}
	want := []waveRow{
		{Wave: 1, Workloads: 2, Pods: 3, Succeeded: 1, Failed: 1, Slowest: 9 * time.Second, SlowestRef: "Deployment a/y", Mechanisms: []string{"Pod", "Tag"}},
		{Wave: 2, Current: true},
		{Wave: 3, Workloads: 1, Pods: 5, Pending: 1, Mechanisms: []string{"Pod"}},
	}
	if diff := cmp.Diff(want, waveRows(ws, 3, 2, v1alpha1.PhaseMigrating)); diff != "" {
		t.Errorf("waveRows (-want +got):\n%s", diff)
	}
	if rows := waveRows(ws, 3, 2, v1alpha1.PhaseHalted); rows[1].Current {
		t.Errorf("a final run has no current wave")
	}
}

// TestViewCountsFallback checks a status without tallies still reports
// honest counts.
func TestViewCountsFallback(t *testing.T) {
	u := rolledBackRun()
	want := u.Status.Counts
	u.Status.Counts = v1alpha1.Counts{}
	if diff := cmp.Diff(want, newView(u, time.Time{}).Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestDefectTimelineOutOfTimeOrder: the report's timeline listed events in
// the order the engine appended them, so a step left out of the run
// (recorded Skipped with the plan's time) showed 19:10:03 after 19:10:08.
// The view orders them by time; events at the same time keep their order.
func TestDefectTimelineOutOfTimeOrder(t *testing.T) {
	at := func(s int) metav1.Time { return metav1.NewTime(time.Date(2026, 12, 3, 19, 10, s, 0, time.UTC)) }
	u := &v1alpha1.MeshUpgrade{Status: v1alpha1.MeshUpgradeStatus{History: []v1alpha1.Event{
		{At: at(6), Type: "step", Message: "install running"},
		{At: at(8), Type: "step", Message: "install done"},
		{At: at(3), Type: "step", Message: "prune skipped"},
		{At: at(8), Type: "wave", Message: "wave 1 started"},
	}}}
	var got []string
	for _, e := range newView(u, time.Time{}).History {
		got = append(got, e.Message)
	}
	want := "prune skipped|install running|install done|wave 1 started"
	if strings.Join(got, "|") != want {
		t.Errorf("timeline = %q, want %q", strings.Join(got, "|"), want)
	}
	if u.Status.History[2].Message != "prune skipped" {
		t.Error("the view reordered the MeshUpgrade's own history")
	}
}
