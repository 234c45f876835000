package upgrade

import (
	"errors"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// TestMigrateThousand moves 1,000 workloads (half by namespace relabel, half
// by pod-template label) from 1-23-2 to 1-24-2 in waves and checks that every
// pod ends on the 1.24.2 proxy, each Deployment was restarted exactly once,
// and meshroll made at most two API writes per workload.
func TestMigrateThousand(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "thousand", Namespaces: 20, Workloads: 1000})
	nss := namespaces(p)
	mu := e.start(t, spec("thousand", nss, []v1alpha1.WaveSize{{Count: 10}, {Percent: 25}, {Percent: 100}}, 20), nil)
	if got := len(mu.Status.Workloads); got != 1000 {
		t.Fatalf("planned %d workloads, want 1000", got)
	}
	before := e.writes.Load()
	start := time.Now()
	out, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	writes := e.writes.Load() - before
	var rollout time.Duration
	for _, w := range out.Status.Workloads {
		rollout += time.Duration(w.RolloutMillis) * time.Millisecond
	}
	ideal := rollout / 20
	t.Logf("migrated 1000 workloads in %s (ideal Σrollout/parallelism %s, ratio %.2f); %d API writes = %.2f per workload",
		took.Round(time.Millisecond), ideal.Round(time.Millisecond), float64(took)/float64(ideal), writes, float64(writes)/1000)
	if out.Status.Phase != v1alpha1.PhaseSucceeded || out.Status.Counts.Succeeded != 1000 {
		t.Fatalf("phase %s, counts %+v: %s", out.Status.Phase, out.Status.Counts, out.Status.Message)
	}
	if per := float64(writes) / 1000; per > 2 {
		t.Errorf("%.2f API writes per workload, want ≤ 2", per)
	}
	if got := e.waitPodsSettled(t, nss, 1000); got[toImage] != 1000 || len(got) != 1 {
		t.Errorf("pods by proxy image after migration: %s; want all 1000 on %s", describe(got), toImage)
	}
	for d, n := range e.replicaSets(t, nss) {
		if n != 2 {
			t.Errorf("Deployment %s has %d ReplicaSets, want 2 (restarted exactly once)", d, n)
		}
	}
	if out.Status.Waves != 3 || len(out.Status.Namespaces) != 10 {
		t.Errorf("waves %d, namespace relabels %d; want 3 and 10", out.Status.Waves, len(out.Status.Namespaces))
	}

	// A second run of a finished upgrade changes nothing.
	before = e.writes.Load()
	if _, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name); err != nil {
		t.Fatalf("rerun of a succeeded upgrade: %v", err)
	}
	if w := e.writes.Load() - before; w != 0 {
		t.Errorf("rerun of a succeeded upgrade made %d writes", w)
	}

	// Rolling back on request restores every workload.
	if _, err := e.store().Patch(t.Context(), mu.Name, []byte(`{"spec":{"rollbackRequested":true}}`)); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	back, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	if !errors.Is(err, upgrade.ErrRolledBack) {
		t.Fatalf("rollback run: %v", err)
	}
	t.Logf("rolled back 1000 workloads in %s", time.Since(start).Round(time.Millisecond))
	if back.Status.Counts.RolledBack != 1000 {
		t.Errorf("rolled back %d of 1000", back.Status.Counts.RolledBack)
	}
	if got := e.waitPodsSettled(t, nss, 1000); got[fromImage] != 1000 || len(got) != 1 {
		t.Errorf("pods by proxy image after rollback: %s; want all 1000 on %s", describe(got), fromImage)
	}
}
