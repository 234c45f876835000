package check

import (
	"fmt"
	"slices"
	"time"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// Codes of VM findings (VM proxies managed by meshroll-agent, read from
// their WorkloadEntries).
const (
	CodeVMAgentUnreachable = "vm-agent-unreachable"
	CodeVMProxyStale       = "vm-proxy-stale"
	CodeVMUpgradeFailed    = "vm-upgrade-failed"
	CodeVMRevisionMissing  = "vm-revision-missing"
	CodeVMOverride         = "vm-override"
)

// VMs checks VM proxies against the installed revisions: agents that stopped
// reporting (heartbeat older than staleAfter), VMs not running their
// assignment, agents that gave up on it, assignments or running revisions
// that are not installed, and break-glass overrides.
func VMs(vms []inventory.VMProxy, s *inventory.Snapshot, now time.Time, staleAfter time.Duration) []Finding {
	installed := make([]string, 0, len(s.Revisions))
	for _, r := range s.Revisions {
		installed = append(installed, r.Name)
	}
	var out []Finding
	for _, vm := range vms {
		obj := object("WorkloadEntry", vm.Namespace, vm.Name)
		switch {
		case vm.Unreachable(now, staleAfter):
			out = append(out, Finding{Code: CodeVMAgentUnreachable, Severity: Warning, Object: obj,
				Message: fmt.Sprintf("meshroll-agent has not reported since %s (older than %s): an upgrade cannot move this VM", heartbeatText(vm.Heartbeat), staleAfter),
				Fix:     "on the VM: systemctl status meshroll-agent; journalctl -u meshroll-agent"})
		case vm.Phase == vmagent.PhaseFailed || vm.Phase == vmagent.PhaseRolledBack:
			out = append(out, Finding{Code: CodeVMUpgradeFailed, Severity: Error, Object: obj,
				Message: fmt.Sprintf("agent %s %s, runs %s: %s", vm.Phase, vm.Target, describeVM(vm.Running), vm.Error),
				Fix:     fmt.Sprintf("fix the cause, then reassign: meshroll vm rollback <upgrade>, or kubectl annotate workloadentry -n %s %s %s=<rev> %s=<version> --overwrite", vm.Namespace, vm.Name, vmagent.AnnotationDesiredRevision, vmagent.AnnotationDesiredVersion)})
		case vm.Stale() && vm.Phase == vmagent.PhaseReady:
			out = append(out, Finding{Code: CodeVMProxyStale, Severity: Warning, Object: obj,
				Message: fmt.Sprintf("runs %s but is assigned %s", describeVM(vm.Running), vm.Desired),
				Fix:     "wait for the agent's next poll, or check its log on the VM: journalctl -u meshroll-agent"})
		}
		for _, rev := range []string{vm.Desired.Revision, vm.Running.Revision} {
			if rev != "" && !slices.Contains(installed, rev) {
				out = append(out, Finding{Code: CodeVMRevisionMissing, Severity: Error, Object: obj,
					Message: fmt.Sprintf("revision %s is not installed, so this VM's proxy has no control plane", rev),
					Fix:     fmt.Sprintf("meshroll revision install --version %s, or assign an installed revision", vm.Desired.Version)})
				break
			}
		}
		if vm.Override != "" {
			out = append(out, Finding{Code: CodeVMOverride, Severity: Info, Object: obj,
				Message: "a local override file decides this VM's version: " + vm.Override,
				Fix:     "remove the override file on the VM when the emergency is over"})
		}
	}
	return out
}

func heartbeatText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func describeVM(a vmagent.Assignment) string {
	if a.IsZero() {
		return "nothing"
	}
	return a.String()
}
