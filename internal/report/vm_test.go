package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// TestTextCountsVMs: VMs move in the same waves as pods, so the report
// counts them among the workloads and says how many of them are VMs.
func TestTextCountsVMs(t *testing.T) {
	mu := &v1alpha1.MeshUpgrade{Spec: v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2"}}
	mu.Status.Workloads = []v1alpha1.WorkloadStatus{
		{Kind: "Deployment", Namespace: "a", Name: "d", Wave: 1, Mechanism: v1alpha1.MechanismPod, Outcome: v1alpha1.OutcomeSucceeded},
		{Kind: "WorkloadEntry", Namespace: "vms", Name: "v1", Wave: 1, Mechanism: v1alpha1.MechanismVM, Outcome: v1alpha1.OutcomeSucceeded},
		{Kind: "WorkloadEntry", Namespace: "vms", Name: "v2", Wave: 2, Mechanism: v1alpha1.MechanismVM, Outcome: v1alpha1.OutcomePending},
	}
	var b bytes.Buffer
	if err := Text(&b, mu); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"2 of 3 moved", "VMs:", "1 of 2 moved, 0 failed, 0 rolled back, 1 pending"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
