package controller

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// TestApplyUpgradesWithLeaderKills: the meshroll chart is installed with
// the Helm SDK and two controller processes run with its ServiceAccount's
// identity (impersonated: a permission the chart lacks fails the run). A
// MeshUpgrade applied from a YAML file (as `kubectl apply --server-side -f`
// or Argo CD does), naming from, to and the release to install, upgrades a seeded mesh
// 1-23-2 → 1-24-2 with no CLI: the leader installs 1-24-2 (rendered from a
// Helm chart repository on 127.0.0.1, not the Go module), flips the
// blue/green gateway, migrates wave by wave with a Prometheus gate and a
// bake after each, moves the revision tag and prunes 1-23-2. The process
// moving workloads is SIGKILLed mid-wave at 5 random points (a new standby
// started each time); the standby takes over within the lease duration and
// the run converges: every Deployment restarted exactly once (two
// ReplicaSets), every pod on 1.24.2. Meanwhile the controllers serve the
// revision-assignment webhook: an owner's redeploy of a moved workload
// naming 1-23-2 is stamped 1-24-2. A real Prometheus scrapes both
// controllers and the revision mix is read back as a series.
func TestApplyUpgradesWithLeaderKills(t *testing.T) {
	e := newEnv(t)
	const workloads, kills = 48, 5
	leaseDuration := 8 * time.Second
	p := e.seed(t, demo.MigrationOptions{Prefix: "ctl", Namespaces: 4, Workloads: workloads})
	nss := p.NamespaceNames()
	e.seedEdge(t)
	installChart(t)
	// The controllers render Istio from a Helm chart repository, as in a
	// cluster with no Go toolchain.
	charts := serveIstioRepo(t, toVersion)

	seed := time.Now().UnixNano()
	if s := os.Getenv("MESHROLL_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill seed %d (MESHROLL_KILL_SEED replays it)", seed)

	// Both serve the webhook; the registered URL is a's port, which a's
	// replacements take over (the API server has one URL, and the webhook
	// fails open while it is down).
	hookA, hookB := freeAddr(t), freeAddr(t)
	flags := func(listen string) []string {
		return []string{"--as", chartSA, "--webhook-bind-address", listen, "--webhook-url", "https://" + hookA + "/mutate", "--repo", charts.URL}
	}
	procs := []*proc{e.startController(t, "a", leaseDuration, "", flags(hookA)...), e.startController(t, "b", leaseDuration, "", flags(hookB)...)}
	var targets []string
	for _, p := range procs {
		targets = append(targets, p.metrics)
	}
	prom := gatetest.StartPrometheus(t, targets...)

	mu := &v1alpha1.MeshUpgrade{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade"},
		ObjectMeta: metav1.ObjectMeta{Name: "ctl"},
		Spec: v1alpha1.MeshUpgradeSpec{From: fromRev, To: toRev, Version: toVersion,
			Selection: v1alpha1.Selection{Namespaces: nss},
			Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Count: 8}}, Parallelism: 2,
				RolloutTimeout: metav1.Duration{Duration: 2 * time.Minute}, Bake: metav1.Duration{Duration: time.Second}},
			FlipGateways: true, MoveTags: true, Prune: true,
			PrometheusURL: prom.URL(),
			Gates: []v1alpha1.Gate{{Name: "scraped", Prometheus: &v1alpha1.PrometheusGate{
				Query: `count(up{job!=""} == 1)`, Op: ">=", Threshold: "1"}}},
		},
	}
	created := time.Now()
	e.applyFile(t, mu)
	store := upgrade.Store{Dynamic: e.dyn}

	// Kill points: after a random number of moved workloads in each of
	// five different waves, while the run is migrating.
	points := rng.Perm(workloads/8 - 1)[:kills]
	slices.Sort(points)
	var takeovers []time.Duration
	next := 0
	deadline := time.Now().Add(15 * time.Minute)
	var last *v1alpha1.MeshUpgrade
	var hook chan error
	for time.Now().Before(deadline) {
		for _, p := range procs {
			if err := p.crashed(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := store.Get(t.Context(), mu.Name)
		if err != nil {
			t.Fatal(err)
		}
		last = got
		if got.Status.Phase.Final() {
			break
		}
		if w, ok := movedByPod(got); hook == nil && ok && got.Status.Phase == v1alpha1.PhaseMigrating {
			// Checked concurrently so the kill points keep their pace.
			hook = make(chan error, 1)
			go func() { hook <- e.redeployAssigned(t, w) }()
		}
		if next < kills && got.Status.Phase == v1alpha1.PhaseMigrating {
			wave := points[next]*8 + 1 + rng.IntN(6)
			pid := e.stepper(t.Context(), mu.Name)
			if got.Status.Counts.Succeeded >= wave && pid != 0 {
				victim := -1
				for i, p := range procs {
					if p.cmd.Process.Pid == pid {
						victim = i
					}
				}
				if victim >= 0 {
					oldLeader := e.leader(t.Context())
					killed := time.Now()
					procs[victim].kill()
					t.Logf("kill %d: SIGKILL controller %s (pid %d) at %d/%d moved, wave %d", next+1, procs[victim].name, pid,
						got.Status.Counts.Succeeded, workloads, got.Status.CurrentWave)
					procs[victim] = e.startController(t, procs[victim].name+"'", leaseDuration, procs[victim].metrics, procs[victim].extra...)
					for time.Since(killed) < 3*leaseDuration {
						if l := e.leader(t.Context()); l != "" && l != oldLeader {
							takeovers = append(takeovers, time.Since(killed))
							break
						}
						time.Sleep(100 * time.Millisecond)
					}
					if len(takeovers) != next+1 {
						t.Fatalf("no standby took over within %s of kill %d", 3*leaseDuration, next+1)
					}
					t.Logf("kill %d: standby leader after %s", next+1, takeovers[next].Round(time.Millisecond))
					next++
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil || last.Status.Phase != v1alpha1.PhaseSucceeded {
		tails := ""
		for _, p := range procs {
			tails += "\n--- " + p.name + "\n" + p.logTail()
		}
		t.Fatalf("MeshUpgrade not Succeeded after %s: phase %q (%s), counts %+v%s", time.Since(created).Round(time.Second),
			last.Status.Phase, last.Status.Message, last.Status.Counts, tails)
	}
	t.Logf("upgrade of %d workloads by the controller took %s with %d leader kill(s); takeovers %v", workloads,
		time.Since(created).Round(time.Millisecond), next, takeovers)
	if hook == nil {
		t.Error("the assignment webhook was never checked: no Deployment moved by pod label while the run migrated")
	} else if err := <-hook; err != nil {
		t.Error(err)
	}
	e.checkEdge(t)
	if n := charts.requests.Load(); n < 4 {
		t.Errorf("the chart repository served %d requests, want at least 4 (index.yaml, base, istiod, gateway): did the controller render from it?", n)
	}
	if next < kills {
		t.Errorf("only %d of %d kills happened mid-wave (the run was faster than the kill points)", next, kills)
	}
	for i, d := range takeovers {
		// A standby may acquire once the lease expired (at most the lease
		// duration after the last renewal) at its next try (retry period
		// 1s); 3s more for API latency on a loaded CI machine.
		if d > leaseDuration+4*time.Second {
			t.Errorf("takeover %d took %s; want within the lease duration %s + the 1s retry period (+3s slack)", i+1, d, leaseDuration)
		}
	}
	for d, n := range e.replicaSets(t, nss) {
		if n != 2 {
			t.Errorf("Deployment %s has %d ReplicaSets, want 2 (restarted exactly once)", d, n)
		}
	}
	got, err := demo.SettledProxyImages(t.Context(), e.kube, nss, workloads, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got[toImage] != workloads || len(got) != 1 {
		t.Errorf("pods by proxy image: %v; want all %d on %s", got, workloads, toImage)
	}
	// The controller's own conditions are written in the reconcile's
	// defer, right after the engine's final status write: until then Ready
	// still tells the step before (e.g. Baking).
	ready := func() bool {
		c := findCondition(last.Status.Conditions, "Ready")
		return c != nil && c.Status == metav1.ConditionTrue
	}
	for end := time.Now().Add(30 * time.Second); !ready() && time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond)
		if last, err = store.Get(t.Context(), mu.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, typ := range []string{"Ready", "Stalled"} {
		c := findCondition(last.Status.Conditions, typ)
		want := metav1.ConditionTrue
		if typ == "Stalled" {
			want = metav1.ConditionFalse
		}
		if c == nil || c.Status != want || c.ObservedGeneration != last.Generation {
			t.Errorf("condition %s = %+v; want %s at generation %d", typ, c, want, last.Generation)
		}
	}
	// The revision mix, as the leaders served it and Prometheus scraped it
	// during the run: all pods on 1-24-2 now, some on 1-23-2 before.
	// The last scrape may predate the final update by a scrape interval:
	// wait (up to 30s) for the series to reach every pod.
	prom.WaitForSeries(t, fmt.Sprintf(`max(meshroll_upgrade_proxies{upgrade="ctl",revision=%q}) == %d`, toRev, workloads))
	before := prom.Query(t, `max(max_over_time(meshroll_upgrade_proxies{upgrade="ctl",revision="`+fromRev+`"}[30m]))`)
	if len(before) == 0 || before[0].Value <= 0 {
		t.Errorf("Prometheus holds no revision mix with pods on %s during the run: %v", fromRev, before)
	}
	t.Logf("Prometheus: %d pods on %s now; at most %v on %s during the run", workloads, toRev, before, fromRev)
}

func findCondition(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}
