package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// TestFaultInjection is issue 9's fault-injection acceptance test: 1,000
// workloads are upgraded by an engine whose every API request goes through a
// fault-injecting proxy (500s, 429s with and without Retry-After, 409s on
// status writes, stalls before and after the server acted, watches cut every
// few seconds) and whose Prometheus gate answers 503 to a third of its
// queries; in the middle of the run the API server becomes unreachable for
// longer than the engine retries ("storm"), so the run must halt cleanly, and
// a rerun must converge. In the end every Deployment runs 1.24.2 and was
// restarted exactly once (2 ReplicaSets), no gate verdict failed, and nothing
// was skipped, failed or rolled back.
func TestFaultInjection(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "fault", Namespaces: 20, Workloads: 1000})
	nss := p.NamespaceNames()
	// The package's 8 fake nodes hold 2,000 pods: give these 1,000 back
	// for the tests that follow.
	t.Cleanup(func() { e.deleteNamespaces(t, nss) })
	prom, promErrs := flakyPrometheus(t)
	mu := spec("fault", nss, []v1alpha1.WaveSize{{Count: 10}, {Percent: 25}, {Percent: 100}}, 20)
	mu.Spec.Gates = []v1alpha1.Gate{{Name: "error-rate", Prometheus: &v1alpha1.PrometheusGate{
		Query: `sum(rate(istio_requests_total{response_code=~"5.."}[1m]))`, Op: "<", Threshold: "1"}}}
	mu.Spec.PrometheusURL = prom
	mu = e.start(t, mu, nil)

	seed := uint64(time.Now().UnixNano())
	t.Logf("fault seed %d", seed)
	mix := faultMix{
		Err500: 0.03, TooMany: 0.02, TooManyRetryAfter: 0.02, Stall: 0.03, Conflict: 0.10,
		StallAfterForward: 0.5, StallMin: 500 * time.Millisecond, StallMax: 6 * time.Second,
		WatchCutMin: 2 * time.Second, WatchCutMax: 12 * time.Second,
	}
	fp := startFaultProxy(t, mix, seed)
	kube, err := kubernetes.NewForConfig(fp.config())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(fp.config())
	if err != nil {
		t.Fatal(err)
	}
	runner, err := gate.NewRunner(prom)
	if err != nil {
		t.Fatal(err)
	}

	// The storm starts once 400 workloads moved and lasts longer than the
	// engine retries (RetryFor 15s): the run has to stop.
	const stormFor = 30 * time.Second
	var stormOnce sync.Once
	obs := &faultObserver{t: t, onProgress: func(st *v1alpha1.MeshUpgradeStatus) {
		if st.Counts.Succeeded >= 400 {
			stormOnce.Do(func() {
				t.Logf("storm: every request fails for %s (at %d moved)", stormFor, st.Counts.Succeeded)
				fp.storm.Store(true)
				time.AfterFunc(stormFor, func() { fp.storm.Store(false) })
			})
		}
	}}
	start := time.Now()
	var out *v1alpha1.MeshUpgrade
	runs := 0
	for runs < 6 {
		runs++
		eng := e.engine(t, runner, obs)
		eng.Kube, eng.Store = kube, upgrade.Store{Dynamic: dyn}
		tuneForFaults(eng)
		runStart := time.Now()
		out, err = eng.Run(t.Context(), mu.Name)
		if err == nil {
			t.Logf("run %d converged in %s", runs, time.Since(runStart).Round(time.Millisecond))
			break
		}
		if errors.Is(err, upgrade.ErrHalted) || errors.Is(err, upgrade.ErrRolledBack) {
			t.Fatalf("run %d ended the upgrade: %v", runs, err)
		}
		phase := v1alpha1.Phase("(unread)")
		if out != nil {
			phase = out.Status.Phase
		}
		t.Logf("run %d stopped after %s (phase %s): %v", runs, time.Since(runStart).Round(time.Millisecond), phase, err)
		for fp.storm.Load() {
			time.Sleep(time.Second)
		}
	}
	took := time.Since(start)
	faults, writes, injected := fp.summary()
	t.Logf("fault mix (seed %d): 500 %.0f%%, 429 %.0f%%, 429+Retry-After %.0f%%, stall %.0f%% (%s–%s, half after the server acted), 409 on %.0f%% of status writes, watches cut every %s–%s, one %s storm; Prometheus 503 on every other query",
		seed, 100*mix.Err500, 100*mix.TooMany, 100*mix.TooManyRetryAfter, 100*mix.Stall, mix.StallMin, mix.StallMax, 100*mix.Conflict, mix.WatchCutMin, mix.WatchCutMax, stormFor)
	t.Logf("%d requests through the proxy, %d faults injected: %s", fp.requests.Load(), injected, faults)
	t.Logf("Prometheus errors answered: %d; engine: %s", promErrs.Load(), strings.Join(obs.retries(), "; "))
	t.Logf("writes that reached the server: %s", writes)
	all := fp.forwardedWrites("PATCH deployments", "PATCH namespaces", "PUT meshupgrades/status")
	t.Logf("%d runs, %s in all; %d writes for 1000 workloads = %.2f per workload (workload patches %d, namespace relabels %d, status writes %d)",
		runs, took.Round(time.Millisecond), all, float64(all)/1000,
		fp.forwardedWrites("PATCH deployments"), fp.forwardedWrites("PATCH namespaces"), fp.forwardedWrites("PUT meshupgrades/status"))
	if err != nil {
		t.Fatalf("no convergence after %d runs: %v", runs, err)
	}
	if runs < 2 {
		t.Errorf("the storm did not stop the run (1 run); the test did not prove a clean halt and resume")
	}
	c := out.Status.Counts
	if out.Status.Phase != v1alpha1.PhaseSucceeded || c.Succeeded != 1000 || c.Failed+c.Skipped+c.RolledBack != 0 {
		t.Fatalf("phase %s, counts %+v: %s", out.Status.Phase, c, out.Status.Message)
	}
	for _, g := range out.Status.Gates {
		if !g.Passed {
			t.Errorf("gate %s after wave %d failed: %s", g.Name, g.Wave, g.Evidence)
		}
	}
	if got := e.waitPodsSettled(t, nss, 1000); got[toImage] != 1000 || len(got) != 1 {
		t.Errorf("pods by proxy image: %s; want all 1000 on %s", describe(got), toImage)
	}
	twice := 0
	for d, n := range e.replicaSets(t, nss) {
		if n != 2 {
			twice++
			t.Errorf("Deployment %s has %d ReplicaSets, want 2 (restarted exactly once)", d, n)
		}
	}
	if promErrs.Load() < 3 {
		t.Errorf("%d Prometheus errors, want at least one per gated wave", promErrs.Load())
	}
	if injected < 100 {
		t.Errorf("only %d faults injected; the test proves little", injected)
	}
	t.Logf("survived: %d/1000 on %s, %d Deployments with other than 2 ReplicaSets, %d gate verdicts all passed", c.Succeeded, toImage, twice, len(out.Status.Gates))
}

// deleteNamespaces deletes nss and waits (up to 3 minutes) until none of
// their pods is left.
func (e *env) deleteNamespaces(t *testing.T, nss []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	for _, ns := range nss {
		if err := e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	}
	for _, ns := range nss {
		for {
			pods, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil && len(pods.Items) == 0 {
				break
			}
			if ctx.Err() != nil {
				t.Errorf("namespace %s still has pods 3 minutes after its deletion: %v", ns, err)
				return
			}
			time.Sleep(time.Second)
		}
	}
	t.Logf("deleted %d namespaces and their pods in %s", len(nss), time.Since(start).Round(time.Millisecond))
}

// faultObserver logs the run's notable events and remembers the engine's
// retry counts.
type faultObserver struct {
	t          *testing.T
	onProgress func(*v1alpha1.MeshUpgradeStatus)
	mu         sync.Mutex
	retried    []string
}

func (o *faultObserver) Event(e v1alpha1.Event) {
	switch e.Type {
	case "retry":
		o.mu.Lock()
		o.retried = append(o.retried, e.Message)
		o.mu.Unlock()
	case "wave", "gate":
	default:
		o.t.Logf("%s %s wave %d: %s", e.At.Format("15:04:05.000"), e.Type, e.Wave, e.Message)
	}
}

func (o *faultObserver) Progress(st *v1alpha1.MeshUpgradeStatus) { o.onProgress(st) }

func (o *faultObserver) retries() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.retried...)
}

// flakyPrometheus answers instant queries with 0 (a healthy mesh), except
// every other query, which gets a 503: each gate evaluation meets at least
// one measurement error.
func flakyPrometheus(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var errs, queries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if queries.Add(1)%2 == 1 {
			errs.Add(1)
			http.Error(w, "injected: prometheus unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"0"]}]}}`, time.Now().Unix())
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &errs
}
