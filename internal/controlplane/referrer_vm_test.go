package controlplane

import (
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// TestDefectRemoveIgnoredVMsOnRevision: remove (and so an upgrade's prune
// step) judged a revision unused from pods, templates, namespaces, tags and
// webhooks alone, so it deleted the istiod VMs were still assigned to or
// still running on. Every VM on the revision is a referrer now; a VM
// assigned elsewhere whose agent has moved is not.
func TestDefectRemoveIgnoredVMsOnRevision(t *testing.T) {
	on := func(rev, version string) vmagent.Assignment {
		return vmagent.Assignment{Revision: rev, Version: version}
	}
	vms := []inventory.VMProxy{
		{Namespace: "vms", Name: "settled", Desired: on("1-23-2", "1.23.2"), Running: on("1-23-2", "1.23.2")},
		{Namespace: "vms", Name: "moving", Desired: on("1-24-2", "1.24.2"), Running: on("1-23-2", "1.23.2")},
		{Namespace: "vms", Name: "assigned", Desired: on("1-23-2", "1.23.2")},
		{Namespace: "vms", Name: "moved", Desired: on("1-24-2", "1.24.2"), Running: on("1-24-2", "1.24.2")},
	}
	refs := VMReferrers(vms, "1-23-2")
	var got []string
	for _, r := range refs {
		if r.Kind != ReferrerVM {
			t.Errorf("referrer %s has kind %q, want %q", r.Object, r.Kind, ReferrerVM)
		}
		if !strings.Contains(r.Fix, "meshroll vm upgrade --from 1-23-2") {
			t.Errorf("referrer %s fix = %q, want the vm upgrade that moves it", r.Object, r.Fix)
		}
		got = append(got, r.Object+": "+r.Reason)
	}
	want := []string{
		"WorkloadEntry vms/settled: the VM is assigned 1-23-2 and its agent runs it",
		"WorkloadEntry vms/moving: the VM's agent still runs 1-23-2 (assigned 1-24-2@1.24.2, not moved yet)",
		"WorkloadEntry vms/assigned: the VM is assigned 1-23-2 (its agent reports nothing yet)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("VM referrers of 1-23-2:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if refs := VMReferrers(vms, "1-24-2"); len(refs) != 2 {
		t.Errorf("VM referrers of 1-24-2 = %v, want moving and moved", refs)
	}
}
