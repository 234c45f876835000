package controller

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// BenchmarkControllerVsCLI migrates 1,000 workloads twice in the same run
// (two seeds of the same shape, same waves and parallelism): first with
// `meshroll upgrade` (the binary, no controller running), then by two
// controller processes from a created MeshUpgrade. It reports both times,
// their ratio (target ≤ 1.2) and the leader's reconcile latency p50/p99
// from its /metrics.
func BenchmarkControllerVsCLI(b *testing.B) {
	e := newEnv(b)
	const workloads = 1000
	if _, err := controlplane.Install(b.Context(), controlplane.Clients{Kube: e.kube, Dynamic: e.dyn},
		controlplane.InstallOptions{Render: istio.RenderOptions{Version: toVersion, Revision: toRev}}); err != nil {
		b.Fatalf("install %s: %v", toVersion, err)
	}
	for i := 0; i < b.N; i++ {
		cliNS := e.seed(b, demo.MigrationOptions{Prefix: fmt.Sprintf("bcli%d", i), Namespaces: 20, Workloads: workloads}).NamespaceNames()
		ctlNS := e.seed(b, demo.MigrationOptions{Prefix: fmt.Sprintf("bctl%d", i), Namespaces: 20, Workloads: workloads}).NamespaceNames()

		start := time.Now()
		cmd := exec.Command(e.bin, "upgrade", "--kubeconfig", sandboxtest.Kubeconfig(b), "--to", toVersion, "--from", fromRev,
			"--name", fmt.Sprintf("bench-cli-%d", i), "--namespace-only", strings.Join(cliNS, ","),
			"--waves", "10,25%,100%", "--parallelism", "20", "--skip", "tags,gateways")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("meshroll upgrade: %v\n%s", err, out)
		}
		cliTook := time.Since(start)
		b.Logf("CLI-driven migration of %d workloads: %s (host load %s at its end)", workloads, cliTook.Round(time.Millisecond), loadavg())

		procs := []*proc{e.startController(b, "a", 15*time.Second, ""), e.startController(b, "b", 15*time.Second, "")}
		mu := &v1alpha1.MeshUpgrade{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-ctl-%d", i)},
			Spec: v1alpha1.MeshUpgradeSpec{From: fromRev, To: toRev, Selection: v1alpha1.Selection{Namespaces: ctlNS},
				Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Count: 10}, {Percent: 25}, {Percent: 100}}, Parallelism: 20}},
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mu)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := e.dyn.Resource(v1alpha1.GroupVersionResource).Create(b.Context(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFinal(b, e, mu.Name, 30*time.Minute)
		ctlTook := time.Since(start)
		store := upgrade.Store{Dynamic: e.dyn}
		got, err := store.Get(b.Context(), mu.Name)
		if err != nil {
			b.Fatal(err)
		}
		if got.Status.Phase != v1alpha1.PhaseSucceeded {
			b.Fatalf("controller-driven upgrade not Succeeded: %+v", got.Status.Counts)
		}
		b.Logf("1,000 workloads: CLI %s, controller %s (ratio %.2f, target ≤ 1.2; host load %s at the controller's end)", cliTook.Round(time.Millisecond),
			ctlTook.Round(time.Millisecond), ctlTook.Seconds()/cliTook.Seconds(), loadavg())
		logTimeline(b, store, fmt.Sprintf("bench-cli-%d", i))
		logTimeline(b, store, mu.Name)
		// The reconcile that wrote Succeeded is observed in its defer, a
		// moment after the phase is readable: read once the counts settle.
		lat, queued := settledLatencies(b, procs)
		b.ReportMetric(cliTook.Seconds(), "cli-s")
		b.ReportMetric(ctlTook.Seconds(), "controller-s")
		b.ReportMetric(ctlTook.Seconds()/cliTook.Seconds(), "controller/cli")
		p50, p99 := quantile(lat, 0.5), quantile(lat, 0.99)
		b.ReportMetric(p50, "reconcile-p50-s")
		b.ReportMetric(p99, "reconcile-p99-s")
		b.ReportMetric(float64(len(lat)), "reconciles")
		b.ReportMetric(quantile(queued, 0.5), "queue-p50-s")
		b.ReportMetric(quantile(queued, 0.99), "queue-p99-s")
		b.Logf("work queue wait before a reconcile: p50 %.3fs p99 %.3fs over %d events", quantile(queued, 0.5), quantile(queued, 0.99), len(queued))
		b.Logf("reconcile latency p50 %.3fs p99 %.3fs max %.3fs over %d reconciles (each value is its histogram bucket's upper bound)",
			p50, p99, quantile(lat, 1), len(lat))
		for _, p := range procs {
			p.kill()
		}
	}
}

// waitFinal watches the named MeshUpgrade until its phase is final: a
// watch costs the API server what the controller's own cache costs, where
// polling a 150 KB object four times a second would load the side it
// measures.
func waitFinal(b *testing.B, e *env, name string, limit time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), limit)
	defer cancel()
	for ctx.Err() == nil {
		w, err := e.dyn.Resource(v1alpha1.GroupVersionResource).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); v1alpha1.Phase(phase).Final() {
				w.Stop()
				return
			}
		}
	}
	b.Fatalf("MeshUpgrade %s not final after %s", name, limit)
}

// logTimeline logs when each step of an upgrade's history came, from the
// MeshUpgrade's creation: where the two sides of the benchmark differ.
func logTimeline(b *testing.B, store upgrade.Store, name string) {
	b.Helper()
	mu, err := store.Get(b.Context(), name)
	if err != nil {
		b.Fatal(err)
	}
	t0 := mu.CreationTimestamp.Time
	var sb strings.Builder
	if mu.Status.StartedAt != nil {
		fmt.Fprintf(&sb, " planned +%.1fs;", mu.Status.StartedAt.Sub(t0).Seconds())
	}
	for _, h := range mu.Status.History {
		if h.Type == "progress" {
			continue
		}
		fmt.Fprintf(&sb, " %s w%d +%.1fs;", h.Type, h.Wave, h.At.Sub(t0).Seconds())
	}
	b.Logf("%s timeline (from creation):%s", name, sb.String())
}

// settledLatencies reads every live replica's reconcile durations once
// two reads a second apart count the same reconciles (or after 30 s). A
// replica that lost its Lease under load exits (controller-runtime does)
// and the standby finishes the run; its histogram is gone with it.
func settledLatencies(b *testing.B, procs []*proc) (lat, queued []float64) {
	b.Helper()
	prev := -1
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		lat, queued = lat[:0], queued[:0]
		for _, p := range procs {
			if err := p.crashed(); err != nil {
				b.Logf("controller %s exited during the run (its reconciles are not counted): %.600s", p.name, err)
				continue
			}
			l, err := reconcileLatency(p.metrics)
			if err != nil {
				b.Fatal(err)
			}
			q, err := queueLatency(p.metrics)
			if err != nil {
				b.Fatal(err)
			}
			lat, queued = append(lat, l...), append(queued, q...)
		}
		if (len(lat) > 0 && len(lat) == prev) || time.Now().After(end) {
			return lat, queued
		}
		prev = len(lat)
	}
}

// reconcileLatency reads the meshroll_reconcile_duration_seconds histogram
// from a controller's /metrics and returns one value per reconcile, each
// at the upper bound of its bucket.
func reconcileLatency(addr string) ([]float64, error) {
	return histogram(addr, "meshroll_reconcile_duration_seconds", nil)
}

// queueLatency reads how long MeshUpgrade events waited in the work queue
// before a reconcile took them (controller-runtime's
// workqueue_queue_duration_seconds for the meshupgrade controller): how soon
// the controller answers an edit, whatever a reconcile then takes.
func queueLatency(addr string) ([]float64, error) {
	return histogram(addr, "workqueue_queue_duration_seconds", map[string]string{"name": "meshupgrade"})
}

// histogram returns one value per observation of family (only series
// carrying every label of match), each at its bucket's upper bound;
// observations above the last bound are +Inf.
func histogram(addr, family string, match map[string]string) ([]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("failed to read metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	// The zero TextParser panics ("Invalid name validation scheme
	// requested: unset") since prometheus/common v0.66: name the scheme.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("failed to parse metrics of %s: %w", addr, err)
	}
	fam := fams[family]
	if fam == nil {
		return nil, nil
	}
	var out []float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m.GetLabel(), match) {
			continue
		}
		prev := uint64(0)
		for _, bk := range m.GetHistogram().GetBucket() {
			for n := prev; n < bk.GetCumulativeCount(); n++ {
				out = append(out, bk.GetUpperBound())
			}
			prev = bk.GetCumulativeCount()
		}
		// Observations above the last bound are only in the sample count.
		for n := prev; n < m.GetHistogram().GetSampleCount(); n++ {
			out = append(out, math.Inf(1))
		}
	}
	return out, nil
}

func hasLabels(have []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, l := range have {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// loadavg is the host's 1, 5 and 15-minute load: on a shared two-core
// machine the two sides' times mean little without it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
