package upgrade

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/plan"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// This file puts VMs into a MeshUpgrade's frozen plan: the VMs of From (their
// WorkloadEntries' assignment, or what their agents run) become workloads of
// kind WorkloadEntry and mechanism VM, cut into waves by the same sizes and
// ordering as the pods, so wave i moves the i-th slice of the pods and the
// i-th slice of the VMs and both pass the same readiness and gates before
// wave i+1 starts. Each VM's previous assignment is recorded in its Via
// before anything is written: rollback reads it from the record.

// planVMs adds the VMs of spec.From to st. It refuses, before any write, a
// target whose release it cannot tell and agents that do not report (their
// VMs could not be moved or judged safely). VMs already healthy on the target
// are left out, as pods already on it are.
func planVMs(st *v1alpha1.MeshUpgradeStatus, mu *v1alpha1.MeshUpgrade, o StartOptions, others []v1alpha1.MeshUpgrade) error {
	if len(o.VMs) == 0 {
		return nil
	}
	spec := mu.Spec
	vms, err := selectedVMs(o.VMs, spec.Selection, o.NamespaceLabels)
	if err != nil {
		return err
	}
	version, err := vmVersion(o.Snapshot, spec.To)
	if err != nil {
		return err
	}
	to := vmagent.Assignment{Revision: spec.To, Version: version}
	cands, _, err := selectVMs(vms, mu.Name, spec.From, to, o.VMStaleAfter, o.Now)
	if err != nil || len(cands) == 0 {
		return err
	}
	prev := map[plan.WorkloadRef]string{}
	moves := make([]plan.Move, 0, len(cands))
	for _, vm := range vms {
		a := vm.Desired
		if a.IsZero() {
			a = vm.Running
		}
		prev[plan.WorkloadRef{Kind: VMKind, Namespace: vm.Namespace, Name: vm.Name}] = a.String()
	}
	for i := range cands {
		cands[i].Labels = o.NamespaceLabels[cands[i].Ref.Namespace]
		moves = append(moves, plan.Move{Candidate: cands[i]})
	}
	if err := overlap(mu.Name, moves, others); err != nil {
		return err
	}
	wp, err := plan.PlanWaves(cands, wavePolicy(spec.Strategy))
	if err != nil {
		return fmt.Errorf("invalid strategy for VMs: %w", err)
	}
	for _, w := range wp.Waves {
		for _, r := range w.Workloads {
			if p := prev[r]; strings.Count(p, "@") != 1 {
				return fmt.Errorf("VM %s has no assignment meshroll could restore on rollback (its agent reports none): wait for its first report, or remove its WorkloadEntry", r.Namespace+"/"+r.Name)
			}
			st.Workloads = append(st.Workloads, v1alpha1.WorkloadStatus{Kind: VMKind, Namespace: r.Namespace, Name: r.Name,
				Wave: w.Index, Mechanism: v1alpha1.MechanismVM, Via: prev[r]})
		}
	}
	// Migration order: a wave's pods, then its VMs, wave by wave.
	slices.SortStableFunc(st.Workloads, func(a, b v1alpha1.WorkloadStatus) int { return a.Wave - b.Wave })
	st.Waves = max(st.Waves, len(wp.Waves))
	st.VMVersion = version
	st.Message += fmt.Sprintf("; %d VM(s) move to %s in the same waves", len(cands), to)
	st.Counts = v1alpha1.Tally(st.Workloads)
	return nil
}

// selectVMs picks the VMs of from (assigned it, or running it when never
// assigned) and the VMs this upgrade assigned already (a resumed run), and
// refuses agents whose heartbeat is older than staleAfter. done are the VMs
// already healthy on to.
func selectVMs(vms []inventory.VMProxy, name, from string, to vmagent.Assignment, maxAge time.Duration, now time.Time) (cands []plan.Candidate, done []string, err error) {
	var unreachable []string
	for _, vm := range vms {
		assigned := vm.Desired.Revision
		if assigned == "" {
			assigned = vm.Running.Revision
		}
		mine := vm.Upgrade == name && vm.Desired == to
		switch {
		case vm.HealthyOn(to) && vm.Desired == to:
			done = append(done, vm.Ref())
			continue
		case assigned != from && !mine:
			continue
		}
		if vm.Unreachable(now, staleAfter(maxAge)) {
			unreachable = append(unreachable, fmt.Sprintf("%s (last heartbeat %s)", vm.Ref(), heartbeatText(vm)))
			continue
		}
		cands = append(cands, plan.Candidate{Ref: plan.WorkloadRef{Kind: VMKind, Namespace: vm.Namespace, Name: vm.Name}, Restartable: true})
	}
	if len(unreachable) > 0 {
		return nil, nil, fmt.Errorf("%d VM agent(s) do not report, so their VMs cannot be moved safely: %s; start meshroll-agent on them or remove their WorkloadEntries",
			len(unreachable), strings.Join(unreachable, ", "))
	}
	return cands, done, nil
}

// selectedVMs keeps the VMs in the upgrade's selection: its namespaces,
// namespace selector and exclusions ("WorkloadEntry namespace/name").
func selectedVMs(vms []inventory.VMProxy, s v1alpha1.Selection, nsLabels map[string]map[string]string) ([]inventory.VMProxy, error) {
	var sel labels.Selector
	if s.NamespaceSelector != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(s.NamespaceSelector); err != nil {
			return nil, fmt.Errorf("invalid namespace selector: %w", err)
		}
	}
	var out []inventory.VMProxy
	for _, vm := range vms {
		switch {
		case len(s.Namespaces) > 0 && !slices.Contains(s.Namespaces, vm.Namespace),
			slices.Contains(s.ExcludeNamespaces, vm.Namespace),
			slices.Contains(s.ExcludeWorkloads, VMKind+" "+vm.Ref()),
			sel != nil && !sel.Matches(labels.Set(nsLabels[vm.Namespace])):
			continue
		}
		out = append(out, vm)
	}
	return out, nil
}

// vmVersion is the release VMs get with revision rev: the one its istiod
// runs. A VM's artifact is per release, so a revision whose release is
// unknown cannot be assigned.
func vmVersion(s *inventory.Snapshot, rev string) (string, error) {
	if s != nil {
		if r := s.Revision(rev); r != nil && r.Version != "" {
			return r.Version, nil
		}
	}
	return "", fmt.Errorf("cannot tell which Istio release revision %q runs (no istiod with a release image tag), so its VMs cannot be assigned an artifact: install it with `meshroll revision install`, or move the VMs with `meshroll vm upgrade --to <release> --revision %s`", rev, rev)
}
