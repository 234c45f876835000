package upgrade

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/webhook"
)

func TestAssignments(t *testing.T) {
	const (
		pod = v1alpha1.MechanismPod
		rev = "1-25-1"
	)
	t0 := freezeNow
	t1 := t0.Add(time.Hour)
	key := func(ns, name string) webhook.Key { return webhook.Key{Kind: "Deployment", Namespace: ns, Name: name} }
	tests := []struct {
		name string
		mus  []v1alpha1.MeshUpgrade
		want map[webhook.Key]string
	}{
		{name: "no upgrades", want: map[webhook.Key]string{}},
		{
			name: "only pod-label moves that started or finished are assigned",
			mus: []v1alpha1.MeshUpgrade{running("run", v1alpha1.PhaseMigrating, t0, revNew,
				ws("a", "moving", 1, pod, v1alpha1.OutcomePending),
				ws("a", "moved", 1, pod, v1alpha1.OutcomeSucceeded),
				ws("a", "todo", 2, pod, ""),
				ws("a", "broken", 1, pod, v1alpha1.OutcomeFailed),
				ws("a", "back", 1, pod, v1alpha1.OutcomeRolledBack),
				ws("b", "ns", 1, v1alpha1.MechanismNamespace, v1alpha1.OutcomeSucceeded),
				ws("b", "tag", 1, v1alpha1.MechanismTag, v1alpha1.OutcomeSucceeded),
			)},
			want: map[webhook.Key]string{key("a", "moving"): revNew, key("a", "moved"): revNew},
		},
		{
			name: "a rolled-back upgrade assigns nothing",
			mus: []v1alpha1.MeshUpgrade{running("undone", v1alpha1.PhaseRolledBack, t0, revNew,
				ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded))},
			want: map[webhook.Key]string{},
		},
		{
			name: "the later upgrade wins whatever the list order",
			mus: []v1alpha1.MeshUpgrade{
				running("second", v1alpha1.PhaseMigrating, t1, rev, ws("a", "web", 1, pod, v1alpha1.OutcomePending)),
				running("first", v1alpha1.PhaseSucceeded, t0, revNew,
					ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded), ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded)),
			},
			want: map[webhook.Key]string{key("a", "web"): rev, key("a", "api"): revNew},
		},
		{
			name: "a later upgrade that rolled a workload back unassigns it",
			mus: []v1alpha1.MeshUpgrade{
				running("first", v1alpha1.PhaseSucceeded, t0, revNew,
					ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded), ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded)),
				running("second", v1alpha1.PhaseHalted, t1, rev, ws("a", "web", 1, pod, v1alpha1.OutcomeRolledBack)),
			},
			want: map[webhook.Key]string{key("a", "api"): revNew},
		},
		{
			name: "a later rolled-back upgrade leaves the earlier assignment",
			mus: []v1alpha1.MeshUpgrade{
				running("second", v1alpha1.PhaseRolledBack, t1, rev, ws("a", "web", 1, pod, v1alpha1.OutcomeRolledBack)),
				running("first", v1alpha1.PhaseSucceeded, t0, revNew, ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded)),
			},
			want: map[webhook.Key]string{key("a", "web"): revNew},
		},
		{
			name: "a later upgrade that has not reached the workload leaves the earlier assignment",
			mus: []v1alpha1.MeshUpgrade{
				running("first", v1alpha1.PhaseSucceeded, t0, revNew, ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded)),
				running("second", v1alpha1.PhaseMigrating, t1, rev, ws("a", "web", 3, pod, "")),
			},
			want: map[webhook.Key]string{key("a", "web"): revNew},
		},
		{
			name: "kinds are told apart",
			mus: []v1alpha1.MeshUpgrade{running("run", v1alpha1.PhaseMigrating, t0, revNew,
				v1alpha1.WorkloadStatus{Kind: "StatefulSet", Namespace: "a", Name: "web", Wave: 1, Mechanism: pod, Outcome: v1alpha1.OutcomeSucceeded})},
			want: map[webhook.Key]string{{Kind: "StatefulSet", Namespace: "a", Name: "web"}: revNew},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Assignments(tc.mus)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Assignments() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAssignmentsDoesNotReorderInput guards callers that keep the list.
func TestAssignmentsDoesNotReorderInput(t *testing.T) {
	mus := []v1alpha1.MeshUpgrade{
		running("second", v1alpha1.PhaseMigrating, freezeNow.Add(time.Hour), "1-25-1"),
		running("first", v1alpha1.PhaseSucceeded, freezeNow, revNew),
	}
	Assignments(mus)
	if mus[0].Name != "second" || mus[1].Name != "first" {
		t.Errorf("Assignments() reordered its input: %s, %s", mus[0].Name, mus[1].Name)
	}
}
