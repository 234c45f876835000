package upgrade

import (
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/plan"
	"github.com/meshroll/meshroll/internal/vmagent"
)

func TestPlanVMs(t *testing.T) {
	now := time.Unix(1000, 0)
	old := vmagent.Assignment{Revision: "1-23-2", Version: "1.23.2"}
	to := vmagent.Assignment{Revision: "1-24-2", Version: "1.24.2"}
	vm := func(name string, desired, running vmagent.Assignment, beat time.Duration, upgrade string) inventory.VMProxy {
		return inventory.VMProxy{Namespace: "vms", Name: name, Desired: desired, Running: running, Phase: vmagent.PhaseReady,
			Heartbeat: now.Add(-beat), Upgrade: upgrade}
	}
	base := VMOptions{Name: "u1", From: "1-23-2", To: to, Installed: []string{"1-23-2", "1-24-2"},
		Waves: []plan.WaveSize{{Count: 1}, {Percent: 100}}, Now: func() time.Time { return now }}
	vms := []inventory.VMProxy{
		vm("a", old, old, time.Second, ""),
		vm("b", vmagent.Assignment{}, old, time.Second, ""), // never assigned: its running revision counts
		vm("c", to, to, time.Second, "u1"),                  // done
		vm("d", to, old, time.Second, "u1"),                 // assigned by this run, not healthy yet: resumed
		vm("e", to, old, time.Second, "other"),              // another upgrade's: left alone
		vm("f", vmagent.Assignment{Revision: "canary", Version: "1.24.2"}, old, time.Second, ""),
	}
	wp, done, err := PlanVMs(vms, base)
	if err != nil {
		t.Fatal(err)
	}
	var waves []string
	for _, w := range wp.Waves {
		var names []string
		for _, r := range w.Workloads {
			names = append(names, r.Name)
		}
		waves = append(waves, strings.Join(names, "+"))
	}
	if got := strings.Join(waves, " | "); got != "a | b+d" || strings.Join(done, ",") != "vms/c" {
		t.Fatalf("waves = %q, done = %v; want \"a | b+d\" and vms/c", got, done)
	}

	notInstalled := base
	notInstalled.Installed = []string{"1-23-2"}
	if _, _, err := PlanVMs(vms, notInstalled); err == nil || !strings.Contains(err.Error(), `revision "1-24-2" is not installed`) {
		t.Errorf("not installed: err = %v", err)
	}
	stale := append(vms, vm("g", old, old, 10*time.Minute, ""))
	if _, _, err := PlanVMs(stale, base); err == nil || !strings.Contains(err.Error(), "vms/g (last heartbeat") {
		t.Errorf("unreachable agent: err = %v", err)
	}
	bad := base
	bad.To = vmagent.Assignment{Revision: "1-24-2", Version: "1.23.2"}
	if _, _, err := PlanVMs(vms, bad); err == nil || !strings.Contains(err.Error(), "invalid VM target") {
		t.Errorf("mismatched target: err = %v", err)
	}
}
