package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// InvalidError is a FleetUpgrade refused before any member is touched.
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string {
	return "invalid FleetUpgrade: " + strings.Join(e.Problems, "; ")
}

// MemberUpgradeName is the name of the MeshUpgrade each member runs for the
// FleetUpgrade name: the same in every member, so a resumed engine finds it.
func MemberUpgradeName(fleetUpgrade string) string { return "fleet-" + fleetUpgrade }

// Freeze validates spec against the fleet's clusters and returns the plan:
// one entry per cluster in rollout order (stage by stage, canaries first,
// then by name) and one per stage. Every problem is reported at once, before
// any member is touched.
func Freeze(spec v1alpha1.FleetUpgradeSpec, clusters []Cluster, fleetUpgrade string) ([]v1alpha1.FleetClusterStatus, []v1alpha1.FleetStageStatus, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if spec.Version == "" {
		bad("version is empty: set spec.version (e.g. 1.24.2)")
	}
	if len(spec.Stages) == 0 {
		bad("no stages: list at least one stage with a cluster selector")
	}
	if spec.MaxConcurrent < 0 || spec.MaxFailedClusters < 0 {
		bad("maxConcurrent %d / maxFailedClusters %d cannot be negative", spec.MaxConcurrent, spec.MaxFailedClusters)
	}
	if u := spec.Unreachable; u != "" && u != v1alpha1.UnreachableWait && u != v1alpha1.UnreachableHalt {
		bad("unreachable policy %q is neither Wait nor Halt", u)
	}
	var canary labels.Selector
	if spec.Canary != nil {
		sel, err := metav1.LabelSelectorAsSelector(spec.Canary)
		if err != nil {
			bad("canary selector: %v", err)
		} else {
			canary = sel
		}
	}
	stageOf := map[string]string{}
	seen := map[string]bool{}
	var plan []v1alpha1.FleetClusterStatus
	var stages []v1alpha1.FleetStageStatus
	firstCanaryStage, lastPlainStage := -1, -1
	for i, st := range spec.Stages {
		if seen[st.Name] {
			bad("stage name %q is used twice", st.Name)
		}
		seen[st.Name] = true
		stages = append(stages, v1alpha1.FleetStageStatus{Name: st.Name, State: v1alpha1.StagePending})
		sel, err := metav1.LabelSelectorAsSelector(&st.Selector)
		if err != nil {
			bad("stage %q selector: %v", st.Name, err)
			continue
		}
		members := Select(clusters, sel)
		if len(members) == 0 || sel.Empty() {
			bad("stage %q selector %q matches no cluster (clusters: %s); fix the selector or register the cluster", st.Name, sel, describeClusters(clusters))
			continue
		}
		var canaries, rest []v1alpha1.FleetClusterStatus
		for _, c := range members {
			if prev, ok := stageOf[c.Name]; ok {
				bad("cluster %q is selected by stages %q and %q: each cluster belongs to one stage", c.Name, prev, st.Name)
				continue
			}
			stageOf[c.Name] = st.Name
			e := v1alpha1.FleetClusterStatus{Name: c.Name, Stage: st.Name, State: v1alpha1.ClusterPending,
				MeshUpgrade: MemberUpgradeName(fleetUpgrade)}
			if canary != nil && canary.Matches(labels.Set(c.Labels)) {
				e.Canary = true
				canaries = append(canaries, e)
			} else {
				rest = append(rest, e)
			}
		}
		if len(canaries) > 0 && firstCanaryStage < 0 {
			firstCanaryStage = i
		}
		if len(canaries) == 0 && firstCanaryStage < 0 && lastPlainStage < 0 {
			lastPlainStage = i
		}
		plan = append(plan, canaries...)
		plan = append(plan, rest...)
	}
	if canary != nil && len(problems) == 0 {
		switch {
		case firstCanaryStage < 0:
			bad("canary selector %q matches no cluster of any stage: the rollout would start without a canary", canary)
		case lastPlainStage >= 0 && lastPlainStage < firstCanaryStage:
			bad("stage order skips the canary: stage %q runs before stage %q, which holds the canary clusters; move the canary stage first",
				spec.Stages[lastPlainStage].Name, spec.Stages[firstCanaryStage].Name)
		}
	}
	for _, a := range spec.Approved {
		if !seen[a] {
			bad("approved stage %q is not a stage of this FleetUpgrade", a)
		}
	}
	if len(problems) > 0 {
		return nil, nil, &InvalidError{Problems: problems}
	}
	return plan, stages, nil
}

func describeClusters(cs []Cluster) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"{"+labelList(c.Labels)+"}")
	}
	if len(parts) == 0 {
		return "none registered"
	}
	return strings.Join(parts, ", ")
}

func labelList(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Approve checks that stage may be approved now: it exists, it waits for an
// approval, and the stages before it succeeded. Approving a stage that was
// not reached is refused so that an approval is always given with the
// evidence of the earlier stages at hand (pre-approving from Git goes through
// spec.approved instead).
func Approve(fu *v1alpha1.FleetUpgrade, stage string) error {
	idx := slices.IndexFunc(fu.Spec.Stages, func(s v1alpha1.FleetStage) bool { return s.Name == stage })
	if idx < 0 {
		var names []string
		for _, s := range fu.Spec.Stages {
			names = append(names, s.Name)
		}
		return fmt.Errorf("FleetUpgrade %q has no stage %q (stages: %s)", fu.Name, stage, strings.Join(names, ", "))
	}
	if slices.Contains(fu.Spec.Approved, stage) {
		return fmt.Errorf("stage %q of FleetUpgrade %q is already approved", stage, fu.Name)
	}
	if fu.Status.Phase.Final() {
		return fmt.Errorf("FleetUpgrade %q already finished (%s): nothing to approve", fu.Name, fu.Status.Phase)
	}
	for i := 0; i < idx; i++ {
		name := fu.Spec.Stages[i].Name
		if st := stageStatus(&fu.Status, name); st == nil || st.State != v1alpha1.StageSucceeded {
			state := v1alpha1.StagePending
			if st != nil {
				state = st.State
			}
			return fmt.Errorf("stage %q of FleetUpgrade %q is not reached yet: stage %q is %s; approve it once %q has succeeded and soaked (`meshroll fleet status`)",
				stage, fu.Name, name, state, name)
		}
	}
	return nil
}

func stageStatus(st *v1alpha1.FleetUpgradeStatus, name string) *v1alpha1.FleetStageStatus {
	for i := range st.Stages {
		if st.Stages[i].Name == name {
			return &st.Stages[i]
		}
	}
	return nil
}

// errNoPlan says Advance was called before Freeze.
var errNoPlan = errors.New("the FleetUpgrade has no frozen plan")
