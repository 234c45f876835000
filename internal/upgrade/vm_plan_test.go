package upgrade

import (
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// TestPlanVMsJoinsThePodWaves: the VMs of From are recorded in the frozen
// plan, cut by the same wave sizes as the pods and ordered after each wave's
// pods, each with its previous assignment in Via (what rollback restores)
// and the target's release frozen in the status; other revisions' VMs,
// excluded namespaces and excluded entries are left out; a silent agent or
// a target whose release is unknown refuses the plan.
func TestPlanVMsJoinsThePodWaves(t *testing.T) {
	now := time.Unix(1000, 0)
	old := vmagent.Assignment{Revision: "1-23-2", Version: "1.23.2"}
	vm := func(ns, name string, a vmagent.Assignment, beat time.Duration) inventory.VMProxy {
		return inventory.VMProxy{Namespace: ns, Name: name, Desired: a, Running: a, Phase: vmagent.PhaseReady, Heartbeat: now.Add(-beat)}
	}
	vms := []inventory.VMProxy{
		vm("vms", "a", old, time.Second), vm("vms", "b", old, time.Second), vm("vms", "c", old, time.Second),
		vm("vms", "x", old, time.Second),  // excluded by name
		vm("skip", "s", old, time.Second), // excluded namespace
		vm("vms", "o", vmagent.Assignment{Revision: "1-22-0", Version: "1.22.0"}, time.Second),
	}
	snap := &inventory.Snapshot{Revisions: []inventory.Revision{{Name: "1-23-2", Version: "1.23.2"}, {Name: "1-24-2", Version: "1.24.2"}}}
	mu := &v1alpha1.MeshUpgrade{Spec: v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2",
		Selection: v1alpha1.Selection{ExcludeNamespaces: []string{"skip"}, ExcludeWorkloads: []string{"WorkloadEntry vms/x"}},
		Strategy:  v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Count: 1}, {Percent: 100}}}}}
	mu.Name = "u1"
	pods := func() v1alpha1.MeshUpgradeStatus {
		return v1alpha1.MeshUpgradeStatus{Waves: 2, Workloads: []v1alpha1.WorkloadStatus{
			{Kind: "Deployment", Namespace: "app", Name: "p1", Wave: 1, Mechanism: v1alpha1.MechanismPod},
			{Kind: "Deployment", Namespace: "app", Name: "p2", Wave: 2, Mechanism: v1alpha1.MechanismPod},
		}}
	}
	o := StartOptions{Snapshot: snap, VMs: vms, Now: now}
	st := pods()
	if err := planVMs(&st, mu, o, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range st.Workloads {
		got = append(got, w.Name+"@"+string(rune('0'+w.Wave)))
		if w.Kind == VMKind && (w.Mechanism != v1alpha1.MechanismVM || w.Via != old.String()) {
			t.Errorf("%s: mechanism %q via %q, want VM via %s", w.Ref(), w.Mechanism, w.Via, old)
		}
	}
	if s := strings.Join(got, " "); s != "p1@1 a@1 p2@2 b@2 c@2" {
		t.Errorf("plan = %q, want the pods then the VMs of each wave: p1@1 a@1 p2@2 b@2 c@2", s)
	}
	if st.VMVersion != "1.24.2" || st.Waves != 2 || st.Counts.Total != 5 {
		t.Errorf("vmVersion %q, waves %d, total %d; want 1.24.2, 2, 5", st.VMVersion, st.Waves, st.Counts.Total)
	}

	silent := o
	silent.VMs = append(vms, vm("vms", "d", old, 10*time.Minute))
	st = pods()
	if err := planVMs(&st, mu, silent, nil); err == nil || !strings.Contains(err.Error(), "vms/d (last heartbeat") || len(st.Workloads) != 2 {
		t.Errorf("silent agent: err = %v, %d workloads; want a refusal naming vms/d and the plan unchanged", err, len(st.Workloads))
	}
	unknown := o
	unknown.Snapshot = &inventory.Snapshot{Revisions: []inventory.Revision{{Name: "1-24-2"}}}
	if err := planVMs(&st, mu, unknown, nil); err == nil || !strings.Contains(err.Error(), `cannot tell which Istio release revision "1-24-2" runs`) {
		t.Errorf("unknown release: err = %v", err)
	}
	busy := []v1alpha1.MeshUpgrade{{Status: v1alpha1.MeshUpgradeStatus{Phase: v1alpha1.PhaseMigrating,
		Workloads: []v1alpha1.WorkloadStatus{{Kind: VMKind, Namespace: "vms", Name: "b"}}}}}
	busy[0].Name = "other"
	if err := planVMs(&st, mu, o, busy); err == nil || !strings.Contains(err.Error(), `MeshUpgrade "other"`) {
		t.Errorf("overlap with a running upgrade: err = %v", err)
	}
}
