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
	installed := map[string]bool{revOld: true, revNew: true, rev: true}
	key := func(up, ns, name string) webhook.Key {
		return webhook.Key{Upgrade: up, Kind: "Deployment", Namespace: ns, Name: name}
	}
	tests := []struct {
		name      string
		mus       []v1alpha1.MeshUpgrade
		installed map[string]bool // nil means installed
		want      map[webhook.Key]string
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
			want: map[webhook.Key]string{key("run", "a", "moving"): revNew, key("run", "a", "moved"): revNew},
		},
		{
			name: "a rolled-back upgrade assigns nothing",
			mus: []v1alpha1.MeshUpgrade{running("undone", v1alpha1.PhaseRolledBack, t0, revNew,
				ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded))},
			want: map[webhook.Key]string{},
		},
		{
			name: "Defect7 a finished upgrade assigns nothing",
			mus: []v1alpha1.MeshUpgrade{
				running("done", v1alpha1.PhaseSucceeded, t0, revNew, ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded)),
				running("halted", v1alpha1.PhaseHalted, t0, revNew, ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded)),
			},
			want: map[webhook.Key]string{},
		},
		{
			name: "Defect7 an upgrade rolling back or asked to assigns nothing",
			mus: []v1alpha1.MeshUpgrade{
				running("back", v1alpha1.PhaseRollingBack, t0, revNew, ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded)),
				func() v1alpha1.MeshUpgrade {
					mu := running("asked", v1alpha1.PhaseMigrating, t0, revNew, ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded))
					mu.Spec.RollbackRequested = true
					return mu
				}(),
			},
			want: map[webhook.Key]string{},
		},
		{
			name: "Defect7 each upgrade assigns under its own name",
			mus: []v1alpha1.MeshUpgrade{
				running("second", v1alpha1.PhaseMigrating, t1, rev, ws("a", "web", 1, pod, v1alpha1.OutcomePending)),
				running("first", v1alpha1.PhaseGating, t0, revNew,
					ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded), ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded)),
			},
			want: map[webhook.Key]string{key("second", "a", "web"): rev, key("first", "a", "web"): revNew, key("first", "a", "api"): revNew},
		},
		{
			name: "Defect7 an upgrade to a revision that is not installed assigns nothing",
			mus: []v1alpha1.MeshUpgrade{
				running("gone", v1alpha1.PhaseMigrating, t0, "9-9-9", ws("a", "web", 1, pod, v1alpha1.OutcomeSucceeded)),
				running("here", v1alpha1.PhaseMigrating, t0, revNew, ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded)),
			},
			want: map[webhook.Key]string{key("here", "a", "api"): revNew},
		},
		{
			name: "nothing is installed, nothing is assigned",
			mus: []v1alpha1.MeshUpgrade{
				running("run", v1alpha1.PhaseMigrating, t0, revNew, ws("a", "api", 1, pod, v1alpha1.OutcomeSucceeded)),
			},
			installed: map[string]bool{},
			want:      map[webhook.Key]string{},
		},
		{
			name: "kinds are told apart",
			mus: []v1alpha1.MeshUpgrade{running("run", v1alpha1.PhaseMigrating, t0, revNew,
				v1alpha1.WorkloadStatus{Kind: "StatefulSet", Namespace: "a", Name: "web", Wave: 1, Mechanism: pod, Outcome: v1alpha1.OutcomeSucceeded})},
			want: map[webhook.Key]string{{Upgrade: "run", Kind: "StatefulSet", Namespace: "a", Name: "web"}: revNew},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst := tc.installed
			if inst == nil {
				inst = installed
			}
			got := Assignments(tc.mus, inst)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Assignments() (-want +got):\n%s", diff)
			}
		})
	}
}
