package bench

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/injector/injectortest"
)

const (
	migrateFrom        = "1.23.2"
	migrateTo          = "1.24.2"
	migrateFromRev     = "1-23-2"
	migrateToRev       = "1-24-2"
	migrateToImage     = "docker.io/istio/proxyv2:1.24.2"
	migrateParallelism = 20
)

// BenchmarkMigrate moves N Deployments (default 1,000; half by namespace
// relabel, half by pod-template label) from 1-23-2 to 1-24-2 with the
// MeshUpgrade engine at parallelism 20, and in the same run and sandbox
// scripts the seed's manual procedure with the real kubectl (relabel the
// namespaces, then `rollout restart` + `rollout status`, three workloads at a
// time) on a sample of M Deployments, extrapolated linearly to N.
//
// Baselines: the ideal is Σ(per-workload rollout time)/parallelism, what a
// perfect scheduler of the same rollouts would take (target ≤ 1.2×); kubectl
// is the procedure meshroll replaces (target ≥ 10× slower than meshroll).
// meshroll must also send ≤ 2 API writes per workload.
//
// The work is done once whatever b.N is: seeding happens before b.Loop, the
// kubectl sample too, and the migration in its first iteration, so ns/op is
// the meshroll migration (inventory read + plan + engine run).
func BenchmarkMigrate(b *testing.B) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Skipf("kubectl not in PATH (%v): the seed's procedure cannot be scripted", err)
	}
	n, m := migrateSizes()
	ctx, st := fullSandbox(b, migrateNodes)

	// Setup writes (installs, seeding, the injector's own) are not counted;
	// only the clients handed to meshroll count theirs.
	setup := newClients(b, st, false)
	mr := newClients(b, st, true)
	injectortest.Start(b, setup.cfg)
	for _, v := range []string{migrateFrom, migrateTo} {
		if _, err := controlplane.Install(ctx, setup.cp(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: v, Revision: istio.RevisionName(v)}}); err != nil {
			b.Fatalf("install %s: %v", v, err)
		}
	}
	mrPlan, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "bench-mr", Namespaces: 20, Workloads: n, Revision: migrateFromRev})
	if err != nil {
		b.Fatal(err)
	}
	// Twice the namespaces and workloads, then only the labelled half.
	kcAll, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "bench-kc", Namespaces: 2 * kubectlNamespaces, Workloads: 2 * m, Revision: migrateFromRev})
	if err != nil {
		b.Fatal(err)
	}
	kcPlan := revisionLabelledOnly(kcAll)
	seedPlans(ctx, b, setup.kube, kcPlan, mrPlan)

	// The seed's procedure first, on the same cluster meshroll then migrates.
	kc, err := kubectlProcedure(ctx, kubectl, st.Kubeconfig, migrateToRev, kcPlan, kubectlParallelism)
	if err != nil {
		b.Fatalf("kubectl procedure after %s: %v", kc.took.Round(time.Millisecond), err)
	}
	kcImages, err := demo.SettledProxyImages(ctx, setup.kube, kcPlan.NamespaceNames(), len(kcPlan.Workloads), 3*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if kcImages[migrateToImage] != len(kcPlan.Workloads) || len(kcImages) != 1 {
		b.Fatalf("pods by proxy image after the kubectl procedure: %v; want all %d on %s", kcImages, len(kcPlan.Workloads), migrateToImage)
	}
	kcPer := kc.took / time.Duration(len(kcPlan.Workloads))
	kcExtrapolated := kcPer * time.Duration(n)

	var res migrateResult
	done := false
	for b.Loop() {
		if done {
			continue // -benchtime Nx: the migration is measured once
		}
		res = migrateOnce(ctx, b, mr, mrPlan)
		done = true
	}
	mrImages, err := demo.SettledProxyImages(ctx, setup.kube, mrPlan.NamespaceNames(), n, 3*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if mrImages[migrateToImage] != n || len(mrImages) != 1 {
		b.Fatalf("pods by proxy image after migration: %v; want all %d on %s", mrImages, n, migrateToImage)
	}

	ideal := res.rollout / migrateParallelism
	perWorkload := float64(res.writes) / float64(n)
	b.ReportMetric(res.took.Seconds(), "meshroll-s")
	b.ReportMetric(ideal.Seconds(), "ideal-s")
	b.ReportMetric(float64(res.took)/float64(ideal), "x-ideal")
	b.ReportMetric(kcExtrapolated.Seconds(), fmt.Sprintf("kubectl-s/%dwl(extrapolated)", n))
	b.ReportMetric(float64(kcExtrapolated)/float64(res.took), "x-faster-than-kubectl")
	b.ReportMetric(perWorkload, "writes/workload")
	b.ReportMetric(float64(kc.writes)/float64(len(kcPlan.Workloads)), "kubectl-writes/workload")
	b.Logf("N=%d: meshroll %s (engine run %s, ideal Σrollout/%d %s, %.2f× ideal; %d writes = %.2f/workload, %d in the run); "+
		"kubectl M=%d in %s (%s/workload, %d calls, %d writes) → %s for N extrapolated, %.1f× meshroll",
		n, res.took.Round(time.Millisecond), res.run.Round(time.Millisecond), migrateParallelism, ideal.Round(time.Millisecond),
		float64(res.took)/float64(ideal), res.writes, perWorkload, res.runWrites,
		len(kcPlan.Workloads), kc.took.Round(time.Millisecond), kcPer.Round(time.Millisecond), kc.calls, kc.writes,
		kcExtrapolated.Round(time.Second), float64(kcExtrapolated)/float64(res.took))
}

// migrateResult is one meshroll migration.
type migrateResult struct {
	took      time.Duration // inventory read + Start + Run
	run       time.Duration // Run alone
	rollout   time.Duration // Σ RolloutMillis
	writes    int64         // every write meshroll's clients sent
	runWrites int64         // those of Run
}

// migrateOnce does what `meshroll upgrade` does: read the cluster, record the
// MeshUpgrade with its frozen plan, run the engine to the end. It checks the
// outcome; the caller checks the pods.
func migrateOnce(ctx context.Context, b *testing.B, c *clients, p *demo.Plan) migrateResult {
	b.Helper()
	n := len(p.Workloads)
	nss := p.NamespaceNames()
	before := c.writes.Load()
	start := time.Now()
	snap, err := inventory.Read(ctx, inventory.Clients{Kube: c.kube, Meta: c.meta}, start)
	if err != nil {
		b.Fatal(err)
	}
	store := upgrade.Store{Dynamic: c.dyn}
	mu := &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-migrate"},
		Spec: v1alpha1.MeshUpgradeSpec{
			From: migrateFromRev, To: migrateToRev,
			Selection: v1alpha1.Selection{Namespaces: nss},
			Strategy: v1alpha1.Strategy{
				Waves:          []v1alpha1.WaveSize{{Count: 10}, {Percent: 100}},
				Parallelism:    migrateParallelism,
				RolloutTimeout: metav1.Duration{Duration: 5 * time.Minute},
			},
			// Halt, not roll back, on a failure: the benchmark fails either way.
			Rollback: v1alpha1.RollbackManual,
		},
	}
	mu, err = upgrade.Start(ctx, mu, upgrade.StartOptions{
		Store: store, Applier: controlplane.NewApplier(c.dyn, c.kube.Discovery(), false),
		Snapshot: snap, Now: time.Now(),
	})
	if err != nil {
		b.Fatalf("start: %v", err)
	}
	if got := len(mu.Status.Workloads); got != n {
		b.Fatalf("planned %d workloads, want %d", got, n)
	}
	images := map[string]string{}
	for _, r := range snap.Revisions {
		images[r.Name] = r.ProxyImage
	}
	engine := &upgrade.Engine{
		Store: store, Kube: c.kube,
		ProxyImage: func(rev string) string { return images[rev] },
		MoveTag: func(ctx context.Context, tag, rev string) error {
			_, err := controlplane.SetTag(ctx, c.cp(), controlplane.TagOptions{Tag: tag, Revision: rev, Overwrite: true, Force: true})
			return err
		},
	}
	runBefore := c.writes.Load()
	runStart := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 45*time.Minute)
	defer cancel()
	out, err := engine.Run(rctx, mu.Name)
	end := time.Now()
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	if out.Status.Phase != v1alpha1.PhaseSucceeded || out.Status.Counts.Succeeded != n {
		b.Fatalf("phase %s, counts %+v: %s", out.Status.Phase, out.Status.Counts, out.Status.Message)
	}
	res := migrateResult{
		took: end.Sub(start), run: end.Sub(runStart),
		writes: c.writes.Load() - before, runWrites: c.writes.Load() - runBefore,
	}
	for _, w := range out.Status.Workloads {
		res.rollout += time.Duration(w.RolloutMillis) * time.Millisecond
	}
	return res
}
