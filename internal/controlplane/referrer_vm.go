package controlplane

import (
	"fmt"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// ReferrerVM: a VM's WorkloadEntry assigns the revision, or its agent
// reports running it. A VM's proxy connects to its revision's istiod the
// whole time it runs; removing that istiod leaves the VM without
// configuration or certificates, and no pod restart brings it back.
const ReferrerVM ReferrerKind = "vm"

// VMReferrers lists the VMs (inventory.ReadVMs) that still use rev: those
// assigned to it and those whose agent still reports running it (a VM
// reassigned but not yet moved still needs rev until its agent has moved).
func VMReferrers(vms []inventory.VMProxy, rev string) []Referrer {
	var out []Referrer
	for _, vm := range vms {
		var reason string
		switch {
		case vm.Desired.Revision == rev && vm.Running.Revision == rev:
			reason = fmt.Sprintf("the VM is assigned %s and its agent runs it", rev)
		case vm.Desired.Revision == rev:
			reason = fmt.Sprintf("the VM is assigned %s (its agent reports %s)", rev, describe(vm.Running))
		case vm.Running.Revision == rev:
			reason = fmt.Sprintf("the VM's agent still runs %s (assigned %s, not moved yet)", rev, describe(vm.Desired))
		default:
			continue
		}
		out = append(out, Referrer{Kind: ReferrerVM, Object: "WorkloadEntry " + vm.Ref(), Reason: reason,
			Fix: fmt.Sprintf("meshroll vm upgrade --from %s --to <version of another revision>  (then wait until `meshroll vm status` shows it moved)", rev)})
	}
	return out
}

func describe(a vmagent.Assignment) string {
	if a.IsZero() {
		return "nothing yet"
	}
	return a.String()
}
