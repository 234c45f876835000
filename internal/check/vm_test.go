package check

import (
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

func TestVMFindings(t *testing.T) {
	now := time.Unix(10000, 0)
	old := vmagent.Assignment{Revision: "1-23-2", Version: "1.23.2"}
	to := vmagent.Assignment{Revision: "1-24-2", Version: "1.24.2"}
	gone := vmagent.Assignment{Revision: "1-22-0", Version: "1.22.0"}
	s := &inventory.Snapshot{Revisions: []inventory.Revision{{Name: "1-23-2"}, {Name: "1-24-2"}}}
	beat := now.Add(-time.Second)
	vms := []inventory.VMProxy{
		{Namespace: "v", Name: "ok", Desired: to, Running: to, Phase: vmagent.PhaseReady, Heartbeat: beat},
		{Namespace: "v", Name: "silent", Desired: to, Running: old, Phase: vmagent.PhaseReady, Heartbeat: now.Add(-time.Hour)},
		{Namespace: "v", Name: "behind", Desired: to, Running: old, Phase: vmagent.PhaseReady, Heartbeat: beat},
		{Namespace: "v", Name: "broken", Desired: to, Running: old, Phase: vmagent.PhaseRolledBack, Target: to.String(), Error: "not healthy", Heartbeat: beat},
		{Namespace: "v", Name: "orphan", Desired: gone, Running: gone, Phase: vmagent.PhaseReady, Heartbeat: beat, Override: "incident 42"},
	}
	var got []string
	for _, f := range VMs(vms, s, now, 2*time.Minute) {
		got = append(got, f.Code+" "+f.Object)
	}
	want := "vm-agent-unreachable WorkloadEntry/v/silent,vm-proxy-stale WorkloadEntry/v/behind,vm-upgrade-failed WorkloadEntry/v/broken," +
		"vm-revision-missing WorkloadEntry/v/orphan,vm-override WorkloadEntry/v/orphan"
	if strings.Join(got, ",") != want {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, ","), want)
	}
}
