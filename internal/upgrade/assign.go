package upgrade

import (
	"slices"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/webhook"
)

// Assignments computes which revision every workload moved by pod label is
// assigned to, for the revision-assignment webhook: To for workloads a run
// moved (or is moving), nothing for rolled-back ones. Later MeshUpgrades win,
// so a workload moved 1-23-2 → 1-24-2 and then 1-24-2 → 1-25-1 is assigned
// 1-25-1. Workloads moved by namespace label or tag need no assignment: their
// owners' manifests do not name a revision.
func Assignments(mus []v1alpha1.MeshUpgrade) map[webhook.Key]string {
	ordered := slices.Clone(mus)
	slices.SortStableFunc(ordered, func(a, b v1alpha1.MeshUpgrade) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	out := map[webhook.Key]string{}
	for _, mu := range ordered {
		if mu.Status.Phase == v1alpha1.PhaseRolledBack {
			continue
		}
		for _, w := range mu.Status.Workloads {
			if w.Mechanism != v1alpha1.MechanismPod {
				continue
			}
			k := webhook.Key{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
			switch w.Outcome {
			case v1alpha1.OutcomePending, v1alpha1.OutcomeSucceeded:
				out[k] = mu.Spec.To
			case v1alpha1.OutcomeRolledBack:
				delete(out, k)
			}
		}
	}
	return out
}
