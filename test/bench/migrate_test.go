package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
)

const (
	migrateFrom    = "1.23.2"
	migrateTo      = "1.24.2"
	migrateFromRev = "1-23-2"
	migrateToRev   = "1-24-2"
	migrateToImage = "docker.io/istio/proxyv2:1.24.2"
	// Namespace prefixes (demo.LabelSet values) of the two sides.
	meshrollSet = "bench-mr"
	kubectlSet  = "bench-kc"
)

// BenchmarkMigrate compares, in one sandbox and one run, three ways to move
// N Deployments (default 1,000; MESHROLL_BENCH_WORKLOADS) from 1-23-2 to
// 1-24-2 when pods take realistic time to start (kwok holds each new pod
// 5–15 s before it is Ready; MESHROLL_BENCH_POD_START):
//
//   - meshroll: `meshroll upgrade --to 1.24.2` with its default settings
//     (waves 1,10%,50%,100%, parallelism scaled to the plan, rollback auto),
//     run in-process through a proxy that counts its API writes; only its
//     selection is narrowed to its own namespaces. Half the workloads move
//     by namespace relabel, half by pod-template label.
//   - the ideal: Σ(rollout time)/parallelism, what a perfect scheduler of
//     the same rollouts would take (target: meshroll ≤ 1.2×); and a stricter
//     lower bound from the pods alone (waveBound), which no wave-respecting
//     scheduler can beat whatever the API costs.
//   - the seed's kubectl procedure over N other Deployments (not a sample):
//     relabel the namespaces, then `rollout restart` + `rollout status`
//     three workloads at a time with the real kubectl (target: ≥ 10× slower
//     than meshroll).
//
// meshroll must also send ≤ 2 API writes per workload. The work happens once
// whatever b.N is (the first b.Loop iteration).
// At 1,000 workloads the kubectl side alone takes over an hour, and seeding
// the 2,000 Deployments 5 to 50 minutes with the host's load (every API write
// waits for CPU; the progress lines print the load):
//
//	go test -run '^$' -bench 'Migrate$' -benchtime 1x -timeout 300m ./test/bench/
func BenchmarkMigrate(b *testing.B) {
	c, err := benchConfigFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	benchMigrate(b, c)
}

// BenchmarkMigrateSmoke is BenchmarkMigrate at 20 workloads with 1–2 s pod
// starts: the comparison's machinery works end to end and the start delay
// really holds every new pod back. It takes about 2 minutes on a loaded
// 2-core machine, above what a test may add to make test, so it is a
// benchmark (sandbox.TestPodStartDelayHoldsPodsBack checks the delay there):
//
//	go test -run '^$' -bench MigrateSmoke -benchtime 1x ./test/bench/
func BenchmarkMigrateSmoke(b *testing.B) {
	c := benchConfig{workloads: 20, kubectlSample: 20, delay: sandbox.PodStartDelay{Min: time.Second, Max: 2 * time.Second}}
	res := benchMigrate(b, c)
	t := b
	if res.parallelism != 20 {
		t.Errorf("default parallelism for 20 workloads = %d, want 20 (plan.DefaultParallelism)", res.parallelism)
	}
	if len(res.starts) != c.workloads {
		t.Errorf("pod starts measured for %d workloads, want %d", len(res.starts), c.workloads)
	}
	for w, d := range res.starts {
		if d < c.delay.Min {
			t.Errorf("workload %s: new pod Ready %s after it appeared, want ≥ %s (the start delay)", w, d, c.delay.Min)
		}
	}
	// A run's fixed writes (CRD, MeshUpgrade, lease renewals, status) are
	// about 40 whatever its size; the ≤ 2 per workload target is measured by
	// BenchmarkMigrate at 1,000.
	if limit := int64(2*c.workloads + 60); res.writes > limit {
		t.Errorf("meshroll sent %d writes for %d workloads, want ≤ %d", res.writes, c.workloads, limit)
	}
	if res.bound > res.took {
		t.Errorf("lower bound %s above meshroll's own %s: the bound is wrong", res.bound, res.took)
	}
}

// benchMigrate runs the comparison once whatever b.N is (in the first
// b.Loop iteration, so ns/op is the whole comparison) and reports it.
func benchMigrate(b *testing.B, c benchConfig) migrateResult {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Skipf("kubectl not in PATH (%v): the seed's procedure cannot be scripted", err)
	}
	var res migrateResult
	done := false
	for b.Loop() {
		if !done {
			res = compareMigrations(b, c, kubectl)
			done = true
		}
	}
	res.report(b)
	return res
}

// migrateResult is one comparison.
type migrateResult struct {
	cfg         benchConfig
	parallelism int
	waves       int
	took        time.Duration            // `meshroll upgrade`, start to exit
	rollout     time.Duration            // Σ recorded rollout times
	starts      map[string]time.Duration // new pod start per workload
	bound       time.Duration            // waveBound
	writes      int64                    // meshroll's API writes
	kubectl     kubectlRun
	load        loadStats // host load while meshroll ran
}

func (r migrateResult) ideal() time.Duration { return r.rollout / time.Duration(r.parallelism) }

// meshrollLine says what meshroll did against the ideal and the bound;
// it is printed before the hour-long kubectl side starts.
func (r migrateResult) meshrollLine() string {
	n := r.cfg.workloads
	var podStart time.Duration
	for _, d := range r.starts {
		podStart += d
	}
	return fmt.Sprintf("N=%d, pod start %s: meshroll %s (%s; defaults: %d waves, parallelism %d; %d writes = %.2f/workload); "+
		"mean rollout %s, mean new-pod start %s; ideal Σrollout/%d %s → %.2f× ideal; wave lower bound from pod starts %s → %.2f×",
		n, r.cfg.delay, r.took.Round(time.Millisecond), r.load, r.waves, r.parallelism, r.writes, float64(r.writes)/float64(n),
		(r.rollout / time.Duration(n)).Round(time.Millisecond), (podStart / time.Duration(max(len(r.starts), 1))).Round(time.Millisecond),
		r.parallelism, r.ideal().Round(time.Millisecond), float64(r.took)/float64(r.ideal()),
		r.bound.Round(time.Millisecond), float64(r.took)/float64(r.bound))
}

// report prints the comparison and, for a benchmark, its metrics.
func (r migrateResult) report(tb testing.TB) {
	tb.Helper()
	if r.cfg.kubectlSample == 0 {
		progress(tb, "%s; kubectl procedure not run (MESHROLL_BENCH_KUBECTL_SAMPLE=0)", r.meshrollLine())
		return
	}
	kcTook, over := r.kubectl.took, "over all"
	if r.cfg.sampled() {
		// Diagnosis only: scaled from the sample, never the target's figure.
		kcTook = r.kubectl.took * time.Duration(r.cfg.workloads) / time.Duration(r.cfg.kubectlSample)
		over = fmt.Sprintf("EXTRAPOLATED from a sample of %d to", r.cfg.kubectlSample)
	}
	xKubectl := float64(kcTook) / float64(r.took)
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(r.took.Seconds(), "meshroll-s")
		b.ReportMetric(r.ideal().Seconds(), "ideal-s")
		b.ReportMetric(float64(r.took)/float64(r.ideal()), "x-ideal")
		b.ReportMetric(r.bound.Seconds(), "bound-s")
		b.ReportMetric(float64(r.took)/float64(r.bound), "x-bound")
		if r.cfg.sampled() {
			b.ReportMetric(xKubectl, "x-faster-than-kubectl-extrapolated")
		} else {
			b.ReportMetric(r.kubectl.took.Seconds(), "kubectl-s")
			b.ReportMetric(xKubectl, "x-faster-than-kubectl")
		}
		b.ReportMetric(float64(r.writes)/float64(r.cfg.workloads), "writes/workload")
	}
	progress(tb, "%s; kubectl procedure (%d at a time, %d calls, %d writes; %s) %s %s %d → meshroll %.1f× faster",
		r.meshrollLine(), kubectlParallelism, r.kubectl.calls, r.kubectl.writes, r.kubectl.load, kcTook.Round(time.Second), over, r.cfg.workloads, xKubectl)
}

// compareMigrations builds the sandbox and both meshes, then runs meshroll
// and the kubectl procedure one after the other.
func compareMigrations(tb testing.TB, c benchConfig, kubectl string) migrateResult {
	tb.Helper()
	n := c.workloads
	ctx, st := fullSandbox(tb, migrateNodes(n), c.delay)
	setup := newClients(tb, st, false)
	istiodtest.Run(tb, st) // real istiod answers Istio's webhooks
	for _, v := range []string{migrateFrom, migrateTo} {
		if _, err := controlplane.Install(ctx, setup.cp(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: v, Revision: istio.RevisionName(v)}}); err != nil {
			tb.Fatalf("install %s: %v", v, err)
		}
	}
	mrPlan, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: meshrollSet, Namespaces: migrateNamespaces, Workloads: n, Revision: migrateFromRev})
	if err != nil {
		tb.Fatal(err)
	}
	// Twice the namespaces and workloads, then only the revision-labelled half.
	kcAll, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: kubectlSet, Namespaces: 2 * migrateNamespaces, Workloads: 2 * n, Revision: migrateFromRev})
	if err != nil {
		tb.Fatal(err)
	}
	kcPlan := firstWorkloads(revisionLabelledOnly(kcAll), c.kubectlSample)
	seedPlans(ctx, tb, setup.kube, mrPlan, kcPlan)

	res := runMeshroll(ctx, tb, setup, mrPlan)
	res.cfg = c
	progress(tb, "%s; now the kubectl procedure over %d", res.meshrollLine(), len(kcPlan.Workloads))
	if len(kcPlan.Workloads) == 0 {
		return res
	}
	load := sampleLoad(ctx, 10*time.Second)
	kc, err := kubectlProcedure(ctx, kubectl, st.Kubeconfig, migrateToRev, kcPlan, kubectlParallelism, func(done int, took time.Duration) {
		progress(tb, "kubectl procedure: %d/%d workloads in %s", done, len(kcPlan.Workloads), took.Round(time.Second))
	})
	if err != nil {
		tb.Fatalf("kubectl procedure after %s: %v", kc.took.Round(time.Millisecond), err)
	}
	kc.load = load.finish()
	res.kubectl = kc
	checkAllOnTarget(ctx, tb, setup, kcPlan)
	return res
}

// runMeshroll runs `meshroll upgrade` at its defaults over p's namespaces
// and reads back what it recorded.
func runMeshroll(ctx context.Context, tb testing.TB, c *clients, p *demo.Plan) migrateResult {
	tb.Helper()
	n := len(p.Workloads)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	starts := watchPodStarts(wctx, tb, c.kube, meshrollSet+"-")
	wp := startWriteProxy(tb, c.cfg)
	load := sampleLoad(ctx, 10*time.Second)
	began := time.Now()
	code, out := wp.runCLI(ctx, "upgrade", "--to", migrateTo, "--namespace-selector", demo.LabelSet+"="+meshrollSet)
	res := migrateResult{took: time.Since(began), writes: wp.writes.Load(), load: load.finish()}
	if code != 0 {
		tb.Fatalf("meshroll upgrade exited %d after %s:\n%s", code, res.took.Round(time.Second), out)
	}
	progress(tb, "meshroll upgrade exited 0 after %s:\n%s", res.took.Round(time.Millisecond), out)
	mu := findUpgrade(ctx, tb, c, n)
	res.parallelism, res.waves = mu.Spec.Strategy.Parallelism, mu.Status.Waves
	checkAllOnTarget(ctx, tb, c, p)
	res.starts = starts.starts()
	waves := make([][]time.Duration, mu.Status.Waves)
	for _, w := range mu.Status.Workloads {
		res.rollout += time.Duration(w.RolloutMillis) * time.Millisecond
		d, ok := res.starts[w.Namespace+"/"+w.Name]
		if !ok {
			tb.Fatalf("no new pod of %s/%s was seen starting", w.Namespace, w.Name)
		}
		waves[w.Wave-1] = append(waves[w.Wave-1], d)
	}
	res.bound = waveBound(waves, res.parallelism)
	return res
}

// findUpgrade returns the one MeshUpgrade the CLI recorded, which must have
// moved all n workloads.
func findUpgrade(ctx context.Context, tb testing.TB, c *clients, n int) *v1alpha1.MeshUpgrade {
	tb.Helper()
	store := upgrade.Store{Dynamic: c.dyn}
	list, err := store.List(ctx)
	if err != nil || len(list) != 1 {
		tb.Fatalf("MeshUpgrades after the run: %d (%v), want 1", len(list), err)
	}
	mu, err := store.Get(ctx, list[0].Name) // with its records joined back
	if err != nil {
		tb.Fatal(err)
	}
	if mu.Status.Phase != v1alpha1.PhaseSucceeded || mu.Status.Counts.Succeeded != n || len(mu.Status.Workloads) != n {
		tb.Fatalf("MeshUpgrade %s: phase %s, counts %+v, %d workloads; want Succeeded with %d", mu.Name, mu.Status.Phase, mu.Status.Counts, len(mu.Status.Workloads), n)
	}
	return mu
}

// checkAllOnTarget fails unless every pod of p runs the target's proxy.
func checkAllOnTarget(ctx context.Context, tb testing.TB, c *clients, p *demo.Plan) {
	tb.Helper()
	images, err := demo.SettledProxyImages(ctx, c.kube, p.NamespaceNames(), len(p.Workloads), 3*time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	if images[migrateToImage] != len(p.Workloads) || len(images) != 1 {
		var got []string
		for img, k := range images {
			got = append(got, fmt.Sprintf("%s: %d", img, k))
		}
		tb.Fatalf("pods by proxy image: %s; want all %d on %s", strings.Join(got, ", "), len(p.Workloads), migrateToImage)
	}
}
