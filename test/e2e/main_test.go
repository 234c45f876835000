package e2e

import (
	"os"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// nodes is the fake node count; DaemonSets put one pod on each.
const nodes = 4

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(nodes))) }

// env is one test's view of the sandbox.
type env struct {
	cfg  *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
	meta metadata.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the sandbox (run without -short)")
	}
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.QPS, cfg.Burst = 100, 200
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	e := &env{cfg: cfg}
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
	return e
}

func (e *env) controlplane() controlplane.Clients {
	return controlplane.Clients{Kube: e.kube, Dynamic: e.dyn}
}

func (e *env) snapshot(t *testing.T) *inventory.Snapshot {
	t.Helper()
	s, err := inventory.Read(t.Context(), inventory.Clients{Kube: e.kube, Meta: e.meta}, time.Now())
	if err != nil {
		t.Fatalf("inventory.Read: %v", err)
	}
	return s
}

// startInjector makes sure real istiod serves the revisions the test
// installs (sandboxtest.Main runs the istiod runner in this test binary); it
// skips the test, saying why, on a host that cannot run istiod.
func (e *env) startInjector(t *testing.T) {
	t.Helper()
	istiodtest.Start(t)
}
