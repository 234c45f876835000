// Package upgrade holds the end-to-end tests of data-plane migration: real
// Deployments created by the real controllers, injected through Istio's real
// webhooks by real istiod (built from Istio's module), moved between two installed revisions by
// the MeshUpgrade engine. It has a sandbox of its own so that its revisions
// and namespaces never meet the other e2e package's.
package upgrade

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

const (
	fromVersion = "1.23.2"
	toVersion   = "1.24.2"
	fromRev     = "1-23-2"
	toRev       = "1-24-2"
	fromImage   = "docker.io/istio/proxyv2:1.23.2"
	toImage     = "docker.io/istio/proxyv2:1.24.2"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(8))) }

// env is one test's view of the sandbox. Writes counts the API writes (any
// verb but GET, LIST and WATCH) made through its clients.
type env struct {
	cfg    *rest.Config
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	meta   metadata.Interface
	writes atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the sandbox (run without -short)")
	}
	e := &env{}
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.QPS, cfg.Burst = 200, 400
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return countWrites{rt: rt, n: &e.writes}
	}
	e.cfg = cfg
	var err error
	if e.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.meta, err = metadata.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	istiodtest.Start(t)
	e.installRevisions(t)
	return e
}

// countWrites counts mutating requests.
type countWrites struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(r)
}

var installed struct {
	sync.Mutex
	done bool
}

// installRevisions installs 1.23.2 and 1.24.2 once per package.
func (e *env) installRevisions(t *testing.T) {
	t.Helper()
	installed.Lock()
	defer installed.Unlock()
	if installed.done {
		return
	}
	for _, v := range []string{fromVersion, toVersion} {
		start := time.Now()
		_, err := controlplane.Install(t.Context(), e.cp(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: v, Revision: istio.RevisionName(v)}})
		if err != nil {
			t.Fatalf("install %s: %v", v, err)
		}
		t.Logf("installed %s in %s", v, time.Since(start).Round(time.Millisecond))
	}
	installed.done = true
}

func (e *env) cp() controlplane.Clients { return controlplane.Clients{Kube: e.kube, Dynamic: e.dyn} }

func (e *env) store() upgrade.Store { return upgrade.Store{Dynamic: e.dyn} }

func (e *env) snapshot(t *testing.T) *inventory.Snapshot {
	t.Helper()
	s, err := inventory.Read(t.Context(), inventory.Clients{Kube: e.kube, Meta: e.meta}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seed creates a migration mesh and waits until every pod runs.
func (e *env) seed(t *testing.T, o demo.MigrationOptions) *demo.Plan {
	t.Helper()
	o.Revision = fromRev
	p, err := demo.MigrationPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := demo.Apply(t.Context(), e.kube, p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if err := demo.WaitReady(ctx, e.kube, p); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d workloads in %d namespaces in %s", len(p.Workloads), len(p.Namespaces), time.Since(start).Round(time.Millisecond))
	return p
}

// spec is a MeshUpgrade over the given namespaces.
func spec(name string, nss []string, waves []v1alpha1.WaveSize, parallelism int) *v1alpha1.MeshUpgrade {
	return &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.MeshUpgradeSpec{
			From: fromRev, To: toRev,
			Selection: v1alpha1.Selection{Namespaces: nss},
			Strategy: v1alpha1.Strategy{Waves: waves, Parallelism: parallelism,
				RolloutTimeout: metav1.Duration{Duration: 2 * time.Minute}},
			Rollback: v1alpha1.RollbackAuto,
		},
	}
}

// start records mu with its frozen plan.
func (e *env) start(t *testing.T, mu *v1alpha1.MeshUpgrade, validate func(context.Context, v1alpha1.Gate) error) *v1alpha1.MeshUpgrade {
	t.Helper()
	snap := e.snapshot(t)
	out, err := upgrade.Start(t.Context(), mu, upgrade.StartOptions{
		Store: e.store(), Applier: controlplane.NewApplier(e.dyn, e.kube.Discovery(), false),
		Snapshot: snap, ValidateGate: validate, Now: time.Now(),
	})
	if err != nil {
		t.Fatalf("start %s: %v", mu.Name, err)
	}
	return out
}

// engine builds the engine the CLI builds.
func (e *env) engine(t *testing.T, gates upgrade.GateRunner, obs upgrade.Observer) *upgrade.Engine {
	snap := e.snapshot(t)
	images := map[string]string{}
	for _, r := range snap.Revisions {
		images[r.Name] = r.ProxyImage
	}
	if obs == nil {
		obs = logObserver{t}
	}
	return &upgrade.Engine{
		Store: e.store(), Kube: e.kube, Gates: gates, Observer: obs,
		ProxyImage: func(rev string) string { return images[rev] },
		MoveTag: func(ctx context.Context, tag, rev string) error {
			_, err := controlplane.SetTag(ctx, e.cp(), controlplane.TagOptions{Tag: tag, Revision: rev, Overwrite: true, Force: true})
			return err
		},
	}
}

// replicaSets counts ReplicaSets per Deployment: every restart makes one, so
// a workload moved exactly once has exactly two.
func (e *env) replicaSets(t *testing.T, nss []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ns := range nss {
		rss, err := e.kube.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range rss.Items {
			for _, o := range rs.OwnerReferences {
				if o.Kind == "Deployment" {
					out[ns+"/"+o.Name]++
				}
			}
		}
	}
	return out
}

// waitPodsSettled counts the namespaces' live pods by proxy image once
// exactly want of them remain (old pods gone), or after two minutes.
func (e *env) waitPodsSettled(t *testing.T, nss []string, want int) map[string]int {
	t.Helper()
	got, err := demo.SettledProxyImages(t.Context(), e.kube, nss, want, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// describe renders a count map for failure messages.
func describe(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	return strings.Join(parts, " ")
}

// logObserver logs the run's events (not its progress) into the test log.
type logObserver struct{ t *testing.T }

func (o logObserver) Event(e v1alpha1.Event) {
	if e.Type != "wave" && e.Type != "gate" {
		o.t.Logf("%s %s wave %d: %s", e.At.Format("15:04:05.000"), e.Type, e.Wave, e.Message)
	}
}

func (logObserver) Progress(*v1alpha1.MeshUpgradeStatus) {}
