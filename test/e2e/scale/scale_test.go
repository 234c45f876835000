// Package scale holds the test of a MeshUpgrade far larger than one
// Kubernetes object can hold (#9 defect 10), against a real API server.
package scale

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// Only etcd and the API server: the records are what is under test, and
// simulated workloads need no pods.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithAPIOnly())) }

const (
	from, to  = "1-23-2", "1-24-2"
	workloads = 20000
	jobs      = 2000 // not restartable: the skipped list grows too
)

// writeMeter records the size of every write the store sends.
type writeMeter struct {
	next          http.RoundTripper
	largest, sent atomic.Int64
	writes        atomic.Int64
}

func (m *writeMeter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		n := int64(len(b))
		m.writes.Add(1)
		m.sent.Add(n)
		for {
			l := m.largest.Load()
			if n <= l || m.largest.CompareAndSwap(l, n) {
				break
			}
		}
	}
	return m.next.RoundTrip(r)
}

// heapPeak samples the heap while f runs and returns the largest value seen.
func heapPeak(f func()) uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	return peak.Load()
}

// snapshot is a mesh of 20,000 restartable workloads and 2,000 Jobs on
// from, in 200 namespaces labelled with it, with to installed.
func snapshot() *inventory.Snapshot {
	s := &inventory.Snapshot{Revisions: []inventory.Revision{
		{Name: from, Deployment: "istiod-" + from, InjectorWebhooks: []string{"istio-sidecar-injector-" + from}, ProxyImage: "docker.io/istio/proxyv2:1.23.2"},
		{Name: to, Deployment: "istiod-" + to, InjectorWebhooks: []string{"istio-sidecar-injector-" + to}, ProxyImage: "docker.io/istio/proxyv2:1.24.2"},
	}}
	for n := range 200 {
		s.Namespaces = append(s.Namespaces, inventory.Namespace{Name: fmt.Sprintf("team-%03d", n), RevLabel: from, HasRevLabel: true})
	}
	group := []inventory.ProxyGroup{{Revision: from, Image: "docker.io/istio/proxyv2:1.23.2", Pods: 3}}
	for i := range workloads + jobs {
		w := inventory.Workload{Kind: "Deployment", Namespace: fmt.Sprintf("team-%03d", i%200), Name: fmt.Sprintf("service-with-a-realistic-name-%05d", i),
			Restartable: true, Proxies: group}
		if i >= workloads {
			w.Kind, w.Restartable, w.RestartReason = "Job", false, "a Job's pods run to completion; restarting cannot replace them"
		}
		s.Workloads = append(s.Workloads, w)
	}
	return s
}

// TestDefect10TwentyThousandWorkloads plans, records and resumes one
// MeshUpgrade of 20,000 workloads (5c5741d's single object could not hold
// it: its first status write failed after the install and gateway flips).
func TestDefect10TwentyThousandWorkloads(t *testing.T) {
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.QPS, cfg.Burst = 500, 1000
	meter := &writeMeter{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { meter.next = rt; return meter })
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	store := upgrade.Store{Dynamic: dyn}
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fleet-wide"}, Spec: v1alpha1.MeshUpgradeSpec{
		From: from, To: to, Strategy: v1alpha1.Strategy{Parallelism: 50,
			Waves: []v1alpha1.WaveSize{{Percent: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}}}}
	snap := snapshot()

	var started *v1alpha1.MeshUpgrade
	planPeak := heapPeak(func() {
		started, err = upgrade.Start(ctx, mu, upgrade.StartOptions{Store: store, Applier: controlplane.NewApplier(dyn, kube.Discovery(), false),
			Snapshot: snap, Now: time.Now()})
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got := len(started.Status.Workloads); got != workloads {
		t.Fatalf("planned %d workloads, want %d", got, workloads)
	}
	if got := len(started.Status.Skipped); got != jobs {
		t.Fatalf("skipped %d, want %d", got, jobs)
	}
	if len(started.Status.Records) < workloads/v1alpha1.RecordSize {
		t.Fatalf("status.records = %d, want the plan split over at least %d records", len(started.Status.Records), workloads/v1alpha1.RecordSize)
	}
	t.Logf("planned %d workloads (+%d skipped) in %d records; %d writes, largest %d bytes, heap peak %.1f MiB",
		workloads, jobs, len(started.Status.Records), meter.writes.Load(), meter.largest.Load(), float64(planPeak)/(1<<20))

	// Record progress as the engine does: each window marked Pending before
	// its patches, then Succeeded, one status write each. Only records whose
	// entries changed are sent.
	const window, moved = 50, 3000
	meter.writes.Store(0)
	meter.sent.Store(0)
	cur := started
	runPeak := heapPeak(func() {
		for lo := 0; lo < moved && err == nil; lo += window {
			for _, outcome := range []v1alpha1.Outcome{v1alpha1.OutcomePending, v1alpha1.OutcomeSucceeded} {
				for i := lo; i < lo+window; i++ {
					cur.Status.Workloads[i].Outcome = outcome
				}
				cur.Status.Counts = v1alpha1.Tally(cur.Status.Workloads)
				if cur, err = store.UpdateStatus(ctx, cur); err != nil {
					return
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	statusWrites := 2 * moved / window
	t.Logf("recorded %d outcomes in %d status writes: %d API writes (%.2f per status write), %.1f KiB sent per status write, largest write %d bytes, heap peak %.1f MiB",
		moved, statusWrites, meter.writes.Load(), float64(meter.writes.Load())/float64(statusWrites),
		float64(meter.sent.Load())/float64(statusWrites)/1024, meter.largest.Load(), float64(runPeak)/(1<<20))
	if per := float64(meter.writes.Load()) / float64(statusWrites); per > 3 {
		t.Errorf("%.2f API writes per status write, want at most 3 (summary + the records in flight)", per)
	}
	if l := meter.largest.Load(); l > 1<<20 {
		t.Errorf("largest write %d bytes, want at most 1 MiB", l)
	}

	// Resume: a new engine reads the run back whole, and Start hands the
	// same run back instead of planning again.
	again, err := store.Get(ctx, mu.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Status.Workloads) != workloads || len(again.Status.Skipped) != jobs {
		t.Fatalf("resumed %d workloads and %d skipped, want %d and %d", len(again.Status.Workloads), len(again.Status.Skipped), workloads, jobs)
	}
	done := v1alpha1.Tally(again.Status.Workloads)
	if done.Succeeded != moved || done.Pending != workloads-moved {
		t.Errorf("resumed counts %+v, want %d succeeded", done, moved)
	}
	for i, w := range again.Status.Workloads {
		if w.Ref() != started.Status.Workloads[i].Ref() {
			t.Fatalf("workload %d is %s after resume, want %s: order lost", i, w.Ref(), started.Status.Workloads[i].Ref())
		}
	}
	rerun := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: mu.Name}, Spec: again.Spec} // what the rerun command builds
	resumed, err := upgrade.Start(ctx, rerun, upgrade.StartOptions{Store: store, Snapshot: snap, Now: time.Now()})
	if err != nil {
		t.Fatalf("Start on resume: %v", err)
	}
	if resumed.UID != started.UID || v1alpha1.Tally(resumed.Status.Workloads).Succeeded != moved {
		t.Errorf("Start on resume did not hand back the recorded run")
	}

	// A plan too large for any MeshUpgrade is refused before any write.
	meter.writes.Store(0)
	big := snapshot()
	big.Namespaces = append([]inventory.Namespace{{Name: "other", RevLabel: from, HasRevLabel: true}}, big.Namespaces...) // sorted
	big.Workloads = nil                                                                                                   // none of them overlaps the running upgrade
	for i := range v1alpha1.MaxPlannedWorkloads + 1 {
		big.Workloads = append(big.Workloads, inventory.Workload{Kind: "Deployment", Namespace: "other", Name: fmt.Sprintf("extra-%06d", i),
			Restartable: true, Proxies: snap.Workloads[0].Proxies})
	}
	huge := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "too-big"}, Spec: mu.Spec}
	huge.Spec.Selection.Namespaces = []string{"other"}
	_, err = upgrade.Start(ctx, huge, upgrade.StartOptions{Store: store, Applier: controlplane.NewApplier(dyn, kube.Discovery(), false),
		Snapshot: big, Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("Start of %d workloads: err = %v, want a refusal naming the limit", len(big.Workloads), err)
	}
	t.Logf("refused: %v", err)
	if n := meter.writes.Load(); n != 0 {
		t.Errorf("the refusal made %d writes, want 0", n)
	}
}
