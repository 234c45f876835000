package dataplane

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshroll/meshroll/internal/istio"
)

// TestDefectRollbackOfAAfterRolledBackBLeavesWorkloadMoved pins the defect
// where upgrade A moved a workload, a later upgrade B moved it again and was
// rolled back, and A's rollback then found no mark of A on the workload (B's
// restore had deleted A's label and previous template) and restored nothing:
// the workload stayed on A's target. B's move now keeps A's marks and B's
// restore puts them back, so A's rollback restores the template from before A.
func TestDefectRollbackOfAAfterRolledBackBLeavesWorkloadMoved(t *testing.T) {
	orig := deployment(map[string]string{"app": "web", istio.LabelRev: "1-23-2"}, map[string]string{AnnotationRestartedAt: ownerStamp})
	step := func(d any, patch []byte, err error) {
		t.Helper()
		if err != nil || patch == nil {
			t.Fatalf("%v: patch %s, %v; want a patch", d, patch, err)
		}
	}
	fwdA, err := Forward(templateOfDeployment(orig), "a", tokenA, "1-24-2")
	step("forward A", fwdA, err)
	movedA := applyPatch(t, orig, fwdA)
	fwdB, err := Forward(templateOfDeployment(movedA), "b", tokenB, "1-25-1")
	step("forward B", fwdB, err)
	movedB := applyPatch(t, movedA, fwdB)
	if got := movedB.Spec.Template.Labels[istio.LabelRev]; got != "1-25-1" {
		t.Fatalf("after B the template names %q, want 1-25-1", got)
	}
	if back, err := Restore(templateOfDeployment(movedB), "a"); err != nil || back != nil {
		t.Fatalf("A's restore while B holds the workload = %s, %v; want no patch", back, err)
	}
	rbB, err := Restore(templateOfDeployment(movedB), "b")
	step("restore B", rbB, err)
	backToA := applyPatch(t, movedB, rbB)
	if diff := cmp.Diff(movedA, backToA, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("B's rollback did not hand the workload back exactly as A left it (-want +got):\n%s", diff)
	}
	rbA, err := Restore(templateOfDeployment(backToA), "a")
	step("restore A", rbA, err)
	if diff := cmp.Diff(orig, applyPatch(t, backToA, rbA), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("A's rollback after B's did not restore the original workload (-want +got):\n%s", diff)
	}
}

// TestForwardPriorDepthIsBounded checks that a workload moved by many
// upgrades, none rolled back, keeps a bounded annotation.
func TestForwardPriorDepthIsBounded(t *testing.T) {
	d := deployment(map[string]string{"app": "web"}, nil)
	for i := range 40 {
		p, err := Forward(templateOfDeployment(d), fmt.Sprintf("u%02d", i), fmt.Sprintf("t%02d", i), fmt.Sprintf("r%02d", i))
		if err != nil || p == nil {
			t.Fatalf("forward %d: %s, %v", i, p, err)
		}
		d = applyPatch(t, d, p)
	}
	if n := len(d.Annotations[AnnotationPrevious]); n > 1200 {
		t.Errorf("after 40 upgrades the previous-template annotation is %d bytes; want it bounded (≤ 1200)", n)
	}
	// The newest upgrades still unwind exactly.
	for i := 39; i > 39-5; i-- { // maxPriorDepth is 6
		p, err := Restore(templateOfDeployment(d), fmt.Sprintf("u%02d", i))
		if err != nil || p == nil {
			t.Fatalf("restore %d: %s, %v", i, p, err)
		}
		d = applyPatch(t, d, p)
		if got, want := d.Spec.Template.Labels[istio.LabelRev], fmt.Sprintf("r%02d", i-1); got != want {
			t.Fatalf("after rolling back u%02d the template names %q, want %q", i, got, want)
		}
	}
}
