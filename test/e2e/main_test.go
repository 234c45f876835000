package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/sandbox/injector"
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

// injectorOnce starts one in-process sandbox injector for the whole package:
// webhooks installed by one test keep pointing at a live injector (and the
// same CA) in the next.
var injectorOnce struct {
	sync.Once
	err error
}

// startInjector runs the sandbox injector in this process (the CLI runs it as
// a process of its own) until the test binary exits, and waits until its
// endpoint is published.
func (e *env) startInjector(t *testing.T) {
	t.Helper()
	injectorOnce.Do(func() {
		ctx := context.Background()
		if err := e.kube.CoreV1().ConfigMaps(injector.EndpointNamespace).Delete(ctx, injector.EndpointName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			injectorOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "meshroll-e2e-injector-")
		if err != nil {
			injectorOnce.err = err
			return
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		go func() {
			if err := injector.Run(ctx, e.cfg, injector.Options{Addr: "127.0.0.1:0", CertDir: dir, Logger: log}); err != nil {
				log.Error("sandbox injector stopped", "err", err)
			}
		}()
		injectorOnce.err = waitEndpoint(ctx, e)
	})
	if injectorOnce.err != nil {
		t.Fatalf("sandbox injector: %v", injectorOnce.err)
	}
}

// waitEndpoint waits until the injector started by startInjector has
// published its endpoint: installs rewrite webhooks only once it exists.
func waitEndpoint(ctx context.Context, e *env) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, found, err := injector.LoadEndpoint(ctx, e.kube)
		if found && err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox injector endpoint not published within a minute (last error: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
