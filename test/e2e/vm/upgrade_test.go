package vm

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/upgrade"
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
		out, code = f.meshroll(f.upgradeArgs("vm-dry", "1,10,100%", "--dry-run")...)
		if code != 0 || !strings.Contains(out, "50 VM(s) move to 1-24-2@1.24.2 in the same waves") || !strings.Contains(out, "VMs:") {
			t.Errorf("meshroll upgrade --dry-run: exit %d, want the VMs in its plan:\n%s", code, out)
		}
		for _, vm := range f.readVMs() {
			if vm.Desired != from || vm.Upgrade != "" {
				t.Fatalf("VM %s changed: desired %s, upgrade %q", vm.Ref(), vm.Desired, vm.Upgrade)
			}
		}
	})

	t.Run("a broken release fails the first wave: meshroll upgrade rolls its pods and VMs back", func(t *testing.T) {
		f.mirror.Add(vmagenttest.PathFor(toVersion), f.bad)
		out, code := f.meshroll(f.upgradeArgs("vm-broken", "2,100%", "--parallelism", "5", "--rollout-timeout", "1m")...)
		t.Logf("meshroll upgrade (broken build), exit %d:\n%s", code, out)
		mu := f.meshUpgrade("vm-broken")
		if code != 3 || mu.Status.Phase != v1alpha1.PhaseRolledBack {
			t.Fatalf("exit %d, phase %s; want 3 and RolledBack", code, mu.Status.Phase)
		}
		vms := byKind(mu, upgrade.VMKind)
		if vms["1:RolledBack"] != 2 || vms["2:"] != fleetSize-2 {
			t.Errorf("VMs in the record by wave:outcome = %v; want wave 1's 2 rolled back and the other %d never started", vms, fleetSize-2)
		}
		why := ""
		for _, w := range mu.Status.Workloads {
			if w.Kind == upgrade.VMKind && w.Outcome == v1alpha1.OutcomeRolledBack {
				why = w.Message
			}
		}
		if !strings.Contains(why, "not healthy") {
			t.Errorf("a rolled-back VM's message %q does not give its agent's reason", why)
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

	const upName = "vm-mesh"
	// upgraded is set when the upgrade subtest ran to its end; the status
	// and rollback subtests read what it left (a Prometheus-less machine
	// skips it, and they would then fail for a reason not theirs).
	upgraded := false
	needUpgraded := func(t *testing.T) {
		if !upgraded {
			t.Skip("skipping: needs the VMs moved by the subtest `meshroll upgrade moves pods and VMs…`, which failed or skipped")
		}
	}
	t.Run("meshroll upgrade moves pods and VMs in gated waves, resumed after kill -9, under load", func(t *testing.T) {
		f.mirror.Add(vmagenttest.PathFor(toVersion), f.good)
		probed := []int{0, 1, 30}
		var gaps []*gapTracker
		for _, i := range probed {
			gaps = append(gaps, trackGaps("http://"+f.vms[i].Addr+"/"))
		}
		probe := gate.StartProbe(t.Context(), v1alpha1.ProbeGate{URL: "http://" + f.vms[30].Addr + "/", QPS: 50, Connections: 2, Duration: metav1.Duration{Duration: 5 * time.Minute}})
		// A real Prometheus gate (fed the VMs' request metrics as their
		// sidecars would report them) and the probe gate (Fortio, any
		// non-2xx fails the wave) run after every wave, for the pods and
		// the VMs of the wave alike.
		exp := gatetest.StartExporter(t)
		prom := gatetest.StartPrometheus(t, exp.Address())
		exp.Serve(vmNamespace, "vm", 200, 100)
		const vmOK = `sum(istio_requests_total{destination_workload_namespace="vms",response_code="200"})`
		prom.WaitForSeries(t, vmOK)
		args := f.upgradeArgs(upName, "1,10,100%", "--parallelism", "20", "--rollout-timeout", "2m", "--probe", "http://"+f.vms[5].Addr+"/",
			"--prometheus", prom.URL(), "--gate", "vm-ok="+vmOK+" > 0")
		u0, t0 := readUsage(f.agentPids()), time.Now()
		killed := f.killMidWave(args, upName)
		out, code := f.meshroll(args...)
		elapsed := time.Since(t0)
		u1 := readUsage(f.agentPids())
		res, perr := probe.Stop()
		t.Logf("meshroll upgrade resumed after kill -9 (%s), exit %d, %s in all:\n%s", killed, code, elapsed.Round(time.Millisecond), out)
		t.Logf("agents while upgrading: RSS %.1f MiB per agent (sum at end), CPU %.2f%% of a core per agent over the run",
			float64(u1.rssKiB)/1024/fleetSize, cpuPercent(u0, u1, elapsed)/fleetSize)
		mu := f.meshUpgrade(upName)
		if code != 0 || mu.Status.Phase != v1alpha1.PhaseSucceeded {
			t.Fatalf("exit %d, phase %s; want 0 and Succeeded", code, mu.Status.Phase)
		}
		if vms := byKind(mu, upgrade.VMKind); vms["1:Succeeded"] != 1 || vms["2:Succeeded"] != 10 || vms["3:Succeeded"] != fleetSize-11 {
			t.Errorf("VMs by wave:outcome = %v; want 1, 10 and %d succeeded in waves 1-3", vms, fleetSize-11)
		}
		if pods := byKind(mu, "!"+upgrade.VMKind); pods["1:Succeeded"] != 1 || pods["2:Succeeded"] != 3 {
			t.Errorf("pod workloads by wave:outcome = %v; want 1 in wave 1 and 3 in wave 2, with the VMs", pods)
		}
		passed := map[string]bool{}
		for _, g := range mu.Status.Gates {
			if g.Passed {
				passed[fmt.Sprintf("%d/%s", g.Wave, g.Name)] = true
			}
		}
		for w := 1; w <= 3; w++ {
			if !passed[fmt.Sprintf("%d/readiness", w)] || !passed[fmt.Sprintf("%d/probe", w)] || !passed[fmt.Sprintf("%d/vm-ok", w)] {
				t.Errorf("wave %d: readiness, probe and Prometheus gates not all passed (%v)", w, passed)
			}
		}
		if imgs := f.proxyImages(); imgs["docker.io/istio/proxyv2:"+toVersion] != 4 || len(imgs) != 1 {
			t.Errorf("seeded pods by proxy image: %v; want all 4 on %s", imgs, toVersion)
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
		if rep, code := f.meshroll("report", upName); code != 0 || !strings.Contains(rep, "VMs:") || !strings.Contains(rep, fmt.Sprintf("%d of %d moved", fleetSize, fleetSize)) {
			t.Errorf("meshroll report: exit %d, does not count the %d VMs:\n%s", code, fleetSize, rep)
		}
		upgraded = true
	})

	t.Run("meshroll vm status lists the VMs by revision and version", func(t *testing.T) {
		needUpgraded(t)
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
		needUpgraded(t) // its refusal is of a move back to 1.23.2
		_ = f.agents[49].Process.Kill()
		_ = f.agents[49].Wait()
		f.agents[49] = nil
		// Back even when this subtest fails: the next ones need all 50.
		defer f.startAgent(49)
		time.Sleep(5 * time.Second) // the agents heartbeat every 3 s
		out, code := f.meshroll("vm", "status", "--stale-after", "4s")
		if code != 1 || !strings.Contains(out, "vm-agent-unreachable") || !strings.Contains(out, "vms/vm-49") {
			t.Fatalf("vm status: exit %d, want 1 naming vm-49 unreachable:\n%s", code, out)
		}
		out, code = f.meshroll("vm", "upgrade", "--to", fromVersion, "--stale-after", "4s", "--dry-run")
		if code == 0 || !strings.Contains(out, "vms/vm-49 (last heartbeat") {
			t.Fatalf("vm upgrade with a silent agent: exit %d, want a refusal naming vm-49:\n%s", code, out)
		}
	})

	t.Run("meshroll rollback reassigns the previous revision to the VMs and waits for their agents", func(t *testing.T) {
		needUpgraded(t)
		t0 := time.Now()
		out, code := f.meshroll("rollback", upName)
		if code != 0 {
			t.Fatalf("rollback: exit %d:\n%s", code, out)
		}
		t.Logf("meshroll rollback of %d VMs (versions kept on disk) and 4 workloads in %s:\n%s", fleetSize, time.Since(t0).Round(time.Millisecond), out)
		// The rollback returned once every agent reported: no wait here.
		f.waitAll(from, time.Second)
		for _, vm := range f.readVMs() {
			if vm.Desired != from {
				t.Fatalf("VM %s assigned %s after the rollback, want %s", vm.Ref(), vm.Desired, from)
			}
		}
		if imgs := f.proxyImages(); imgs["docker.io/istio/proxyv2:"+fromVersion] != 4 {
			t.Errorf("seeded pods by proxy image after the rollback: %v; want all 4 on %s", imgs, fromVersion)
		}
	})

	t.Run("meshroll controller moves the VMs of a MeshUpgrade applied alone", func(t *testing.T) {
		f.controllerMovesVMs(t, "vm-controller")
	})
}
