package vm

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
	"github.com/meshroll/meshroll/internal/vmagent/vmagenttest"
)

const fleetSize = 50

// TestVMFleetUpgrade onboards 50 VMs with `meshroll vm onboard`, runs their
// agents as processes and moves them 1-23-2 → 1-24-2 with `meshroll vm
// upgrade`: first against a broken 1.24.2 build (the first wave's agents
// roll back on their VMs, the wave halts and meshroll reassigns 1-23-2),
// then the real release in gated waves under load, then `meshroll vm
// rollback`. Agents' RSS and CPU and the time from assignment to healthy are
// logged.
func TestVMFleetUpgrade(t *testing.T) {
	f := newFleet(t, fleetSize)
	start := time.Now() // the agents just started, each assigned 1-23-2 by onboard
	from := vmagent.Assignment{Revision: fromRev, Version: fromVersion}
	to := vmagent.Assignment{Revision: toRev, Version: toVersion}
	f.waitAll(from, 4*time.Minute)
	t.Logf("first install (download, install, start, health): %d agents at once, assignment to all healthy in %s", fleetSize, time.Since(start).Round(time.Millisecond))

	before := readUsage(f.agentPids())
	time.Sleep(5 * time.Second)
	idle := readUsage(f.agentPids())
	t.Logf("agents idle: RSS %.1f MiB per agent, CPU %.2f%% of a core per agent",
		float64(idle.rssKiB)/1024/fleetSize, cpuPercent(before, idle, 5*time.Second)/fleetSize)

	t.Run("the agent token reads and patches only its own WorkloadEntry", func(t *testing.T) {
		if c := f.agentGet(0, "GET", wePath("vm-00")); c != 200 {
			t.Errorf("own WorkloadEntry: HTTP %d, want 200", c)
		}
		for _, c := range []struct{ method, path string }{
			{"GET", wePath("vm-01")}, {"PATCH", wePath("vm-01")},
			{"GET", "/apis/networking.istio.io/v1/namespaces/" + vmNamespace + "/workloadentries"},
			{"GET", "/api/v1/namespaces/" + vmNamespace + "/secrets"},
		} {
			if code := f.agentGet(0, c.method, c.path); code != 403 {
				t.Errorf("%s %s with vm-00's token: HTTP %d, want 403", c.method, c.path, code)
			}
		}
	})

	t.Run("bad input and --dry-run change nothing", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"vm", "upgrade", "--to", "1.99.0"}, `revision "1-99-0" is not installed`},
			{[]string{"vm", "upgrade", "--to", toVersion, "--revision", "1-23-2"}, "is release 1.23.2 but the assigned version is 1.24.2"},
			{[]string{"vm", "upgrade", "--to", toVersion, "--waves", "0"}, "invalid --waves entry"},
			{[]string{"vm", "onboard", "x", "-n", vmNamespace, "--address", "10.0.0.1", "--version", fromVersion, "--artifact-url", "http://m/{{.Vers}}.tar.gz", "--out", t.TempDir()}, "uses a field that does not exist"},
		} {
			out, code := f.meshroll(c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Errorf("meshroll %s: exit %d, output %q; want an error containing %q", strings.Join(c.args, " "), code, out, c.want)
			}
		}
		out, code := f.meshroll("vm", "upgrade", "--to", toVersion, "--waves", "1,10,100%", "--dry-run")
		if code != 0 || !strings.Contains(out, "vm wave 3 (dry run): would assign 1-24-2@1.24.2 to 39 VM(s)") {
			t.Errorf("vm upgrade --dry-run: exit %d:\n%s", code, out)
		}
		for _, vm := range f.readVMs() {
			if vm.Desired != from || vm.Upgrade != "" {
				t.Fatalf("VM %s changed: desired %s, upgrade %q", vm.Ref(), vm.Desired, vm.Upgrade)
			}
		}
	})

	t.Run("a broken release halts the first wave and its VMs roll back", func(t *testing.T) {
		f.mirror.Add(vmagenttest.PathFor(toVersion), f.bad)
		out, code := f.meshroll("vm", "upgrade", "--to", toVersion, "--waves", "2,100%", "--parallelism", "5", "--poll", "200ms", "--timeout", "1m")
		t.Logf("meshroll vm upgrade (broken build), exit %d:\n%s", code, out)
		if code != 3 || !strings.Contains(out, "RolledBack") || !strings.Contains(out, "not healthy") || !strings.Contains(out, "back on its previous version") {
			t.Fatalf("exit %d; want 3 with the agents' rollback reason and meshroll's rollback", code)
		}
		f.waitAll(from, time.Minute)
		touched := 0
		for _, vm := range f.readVMs() {
			if vm.Upgrade != "" {
				touched++
			}
		}
		if touched != 2 {
			t.Fatalf("%d VMs were assigned, want only the first wave's 2", touched)
		}
		for _, vm := range f.vms {
			if got := serving(vm.Addr); got != fromVersion {
				t.Fatalf("VM %s serves %q, want %s", vm.Config.Name, got, fromVersion)
			}
		}
	})

	t.Run("gated waves under load: every VM ends on the new version", func(t *testing.T) {
		f.mirror.Add(vmagenttest.PathFor(toVersion), f.good)
		probed := []int{0, 1, 30}
		var gaps []*gapTracker
		for _, i := range probed {
			gaps = append(gaps, trackGaps("http://"+f.vms[i].Addr+"/"))
		}
		probe := gate.StartProbe(t.Context(), v1alpha1.ProbeGate{URL: "http://" + f.vms[30].Addr + "/", QPS: 50, Connections: 2, Duration: metav1.Duration{Duration: 5 * time.Minute}})
		u0, t0 := readUsage(f.agentPids()), time.Now()
		out, code := f.meshroll("vm", "upgrade", "--to", toVersion, "--waves", "1,10,100%", "--parallelism", "20", "--poll", "200ms", "--timeout", "2m")
		elapsed := time.Since(t0)
		u1 := readUsage(f.agentPids())
		res, perr := probe.Stop()
		t.Logf("meshroll vm upgrade, exit %d in %s:\n%s", code, elapsed.Round(time.Millisecond), out)
		t.Logf("agents while upgrading: RSS %.1f MiB per agent (sum at end), CPU %.2f%% of a core per agent over the run",
			float64(u1.rssKiB)/1024/fleetSize, cpuPercent(u0, u1, elapsed)/fleetSize)
		if code != 0 || !strings.Contains(out, "vm wave 3: 39 VM(s) healthy on "+to.String()) {
			t.Fatalf("exit %d; want three waves (1, 10, the remaining 39) all healthy", code)
		}
		f.waitAll(to, 30*time.Second)
		for _, vm := range f.vms {
			if got := serving(vm.Addr); got != toVersion {
				t.Fatalf("VM %s serves %q, want %s", vm.Config.Name, got, toVersion)
			}
		}
		for k, g := range gaps {
			longest, failures, requests := g.Stop()
			t.Logf("VM %d under load: longest gap %s (%d of %d requests failed)", probed[k], longest.Round(time.Millisecond), failures, requests)
			if longest > 2*time.Second {
				t.Errorf("VM %d: a gap of %s, longer than one restart (≤ 2 s)", probed[k], longest)
			}
		}
		if perr != nil {
			t.Fatalf("fortio probe: %v", perr)
		}
		t.Logf("fortio on VM 30: %d requests, codes %v, %.2f%% errors, p99 %s", res.Requests, res.Codes, res.ErrorPercent, res.P99)
		if res.Codes[200] == 0 {
			t.Fatalf("fortio saw no 200: %v", res.Codes)
		}
	})

	t.Run("meshroll vm status lists the VMs by revision and version", func(t *testing.T) {
		out, code := f.meshroll("vm", "status")
		if code != 0 || !strings.Contains(out, "1-24-2") {
			t.Fatalf("vm status: exit %d:\n%s", code, out)
		}
		groups := inventory.GroupVMs(f.readVMs())
		if len(groups) != 1 || groups[0].VMs != fleetSize || groups[0].Revision != toRev {
			t.Fatalf("groups = %+v, want all %d on %s", groups, fleetSize, toRev)
		}
	})

	t.Run("an agent that stops reporting is flagged and its VM refused", func(t *testing.T) {
		_ = f.agents[49].Process.Kill()
		_ = f.agents[49].Wait()
		f.agents[49] = nil
		time.Sleep(5 * time.Second) // the agents heartbeat every 3 s
		out, code := f.meshroll("vm", "status", "--stale-after", "4s")
		if code != 1 || !strings.Contains(out, "vm-agent-unreachable") || !strings.Contains(out, "vms/vm-49") {
			t.Fatalf("vm status: exit %d, want 1 naming vm-49 unreachable:\n%s", code, out)
		}
		out, code = f.meshroll("vm", "upgrade", "--to", fromVersion, "--stale-after", "4s", "--dry-run")
		if code == 0 || !strings.Contains(out, "vms/vm-49 (last heartbeat") {
			t.Fatalf("vm upgrade with a silent agent: exit %d, want a refusal naming vm-49:\n%s", code, out)
		}
		f.startAgent(49)
	})

	t.Run("meshroll vm rollback reassigns the previous revision and waits", func(t *testing.T) {
		t0 := time.Now()
		out, code := f.meshroll("vm", "rollback", "vm-"+toRev, "--parallelism", "50", "--poll", "200ms")
		if code != 0 {
			t.Fatalf("vm rollback: exit %d:\n%s", code, out)
		}
		t.Logf("rollback of %d VMs (versions kept on disk) in %s", fleetSize, time.Since(t0).Round(time.Millisecond))
		f.waitAll(from, 10*time.Second)
	})
}
