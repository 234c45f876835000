package upgrade

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestMigrateThousand moves 1,000 workloads (half by namespace relabel, half
// by pod-template label) from 1-23-2 to 1-24-2 in waves and checks that every
// pod ends on the 1.24.2 proxy, each Deployment was restarted exactly once,
// and meshroll made at most two API writes per workload.
func TestMigrateThousand(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "thousand", Namespaces: 20, Workloads: 1000})
	nss := p.NamespaceNames()
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
}

// TestDrill runs `meshroll upgrade --drill` through the CLI: the run goes
// forward, then rolls every workload back to the old revision, and the report
// it writes shows both.
func TestDrill(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "drill", Namespaces: 2, Workloads: 10})
	nss := p.NamespaceNames()
	report := filepath.Join(t.TempDir(), "drill.html")
	kc := sandboxtest.Kubeconfig(t)
	// A blue/green gateway on the old revision: the drill flips its Service
	// to the new colour and back.
	for _, args := range [][]string{
		{"gateway", "install", "--kubeconfig", kc, "--name", "edge", "--namespace", "drill-gw", "--revision", fromRev},
		{"gateway", "expose", "--kubeconfig", kc, "--name", "edge", "--namespace", "drill-gw"},
	} {
		var out, errOut bytes.Buffer
		if code := cli.Main(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), []string{"upgrade", "--kubeconfig", kc,
		"--to", toVersion, "--from", fromRev, "--name", "drill", "--skip", "install,tags",
		"--namespace-only", strings.Join(nss, ","), "--waves", "3,100%", "--parallelism", "4",
		"--drill", "--report", report}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"drill done: 10 workload(s) went to 1-24-2 and back to 1-23-2",
		"drill-gw/edge now selects 1-24-2 (was 1-23-2)",
		"drill-gw/edge now selects 1-23-2 (was 1-24-2)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	svc, err := e.kube.CoreV1().Services("drill-gw").Get(t.Context(), "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := svc.Spec.Selector[istio.LabelRev]; rev != fromRev {
		t.Errorf("gateway Service selects %q after the drill, want %q", rev, fromRev)
	}
	mu, err := e.store().Get(t.Context(), "drill")
	if err != nil {
		t.Fatal(err)
	}
	if mu.Status.Phase != v1alpha1.PhaseRolledBack || mu.Status.Counts.RolledBack != 10 {
		t.Errorf("phase %s counts %+v; want RolledBack with 10 rolled back", mu.Status.Phase, mu.Status.Counts)
	}
	if imgs := e.waitPodsSettled(t, nss, 10); imgs[fromImage] != 10 {
		t.Errorf("pods by proxy image after the drill: %s; want all 10 on %s", describe(imgs), fromImage)
	}
	html, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RolledBack", "1-24-2", "<svg"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
