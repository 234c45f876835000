//go:build linux

package xds_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/podproc"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2)))
}

// The upgrade the tests run, and the image the app's pods name (the process
// runner maps it to the built test/xdsapp).
const (
	fromVersion = "1.23.2"
	toVersion   = "1.24.2"
	appImage    = "meshroll/xdsapp:test"
)

var (
	fromRev = istio.RevisionName(fromVersion)
	toRev   = istio.RevisionName(toVersion)
)

// noRetries turns off the mesh's default retry policy (meshConfig
// defaultHttpRetryPolicy; Istio's default retries a call twice on
// unavailable, refused stream or connect failure, and istiod pushes that
// policy to proxyless gRPC clients too). With it, a call cut by a dying
// server is retried on another and never counted: the harness must see
// every cut call, in the zero-failure runs as in the controls.
const noRetries = "meshConfig.defaultHttpRetryPolicy.attempts=0"

// buildTimeout covers cold builds of pilot-discovery and of the app on two
// busy cores.
const buildTimeout = 25 * time.Minute

// env is one test's view of the sandbox.
type env struct {
	cfg    *rest.Config
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	runner *podproc.Runner
}

// started holds what runs once per test binary: the app build and the
// process runner (its processes die with the binary).
var started struct {
	sync.Once
	runner *podproc.Runner
	err    error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: needs the sandbox with real istiod (run without -short)")
	}
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.QPS, cfg.Burst = 100, 200
	istiodtest.Start(t)
	e := &env{cfg: cfg, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
	started.Do(func() { started.runner, started.err = startRunner(t, cfg) })
	if started.err != nil {
		t.Fatal(started.err)
	}
	e.runner = started.runner
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	for _, v := range []string{fromVersion, toVersion} {
		if _, err := sandbox.EnsurePilotDiscovery(ctx, v, testWriter{t}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// startRunner builds test/xdsapp and runs the process runner for it.
func startRunner(t *testing.T, cfg *rest.Config) (*podproc.Runner, error) {
	dir := sandboxtest.Dir(t)
	bin := filepath.Join(dir, "bin-xdsapp", "xdsapp")
	began := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "xdsapp")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("failed to build test/xdsapp: %w\n%s", err, out.String())
	}
	t.Logf("MEASURE build of test/xdsapp: %s", time.Since(began).Round(100*time.Millisecond))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := podproc.New(cfg, podproc.Options{Dir: dir, Images: map[string]string{appImage: bin}, Logger: log})
	if err != nil {
		return nil, err
	}
	go func() {
		if err := r.Run(context.Background()); err != nil {
			log.Error("process runner stopped", "err", err)
		}
	}()
	return r, nil
}

// install installs a release as meshroll does, unless its istiod runs.
func (e *env) install(t *testing.T, version string) {
	t.Helper()
	rev := istio.RevisionName(version)
	if d, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+rev, metav1.GetOptions{}); err == nil && d.Status.AvailableReplicas > 0 {
		return
	}
	began := time.Now()
	if _, err := controlplane.Install(t.Context(), controlplane.Clients{Kube: e.kube, Dynamic: e.dyn},
		controlplane.InstallOptions{Render: istio.RenderOptions{Version: version, Revision: rev, Set: []string{noRetries}}}); err != nil {
		t.Fatalf("install %s: %v", version, err)
	}
	e.assertNoRetries(t, rev)
	t.Logf("MEASURE install of %s (istiod ready): %s", rev, time.Since(began).Round(100*time.Millisecond))
}

// assertNoRetries checks that revision rev's mesh config turns retries off.
func (e *env) assertNoRetries(t *testing.T, rev string) {
	t.Helper()
	cm, err := e.kube.CoreV1().ConfigMaps(istio.SystemNamespace).Get(t.Context(), "istio-"+rev, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mesh := cm.Data["mesh"]; !strings.Contains(mesh, "defaultHttpRetryPolicy") {
		t.Fatalf("mesh config of %s has no defaultHttpRetryPolicy (%s):\n%s", rev, noRetries, mesh)
	}
}

// meshroll runs the CLI in-process and fails the test on a non-zero exit.
func meshroll(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), append(args, "--kubeconfig", sandboxtest.Kubeconfig(t)), &out, &errOut)
	if code != 0 {
		t.Fatalf("meshroll %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
	}
	return out.String()
}

func (e *env) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// deleteNamespaces deletes namespaces and waits until they are gone, their
// processes stopped: nothing may reference a revision the next step prunes.
func (e *env) deleteNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		if err := e.kube.CoreV1().Namespaces().Delete(context.WithoutCancel(t.Context()), ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	waitFor(t, 3*time.Minute, func(ctx context.Context) (bool, error) {
		for _, ns := range names {
			if _, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("namespace %s still exists", ns)
			}
		}
		return true, nil
	})
}

// waitAvailable waits until every replica of each Deployment is updated and
// available: its processes answer their readiness probes.
func (e *env) waitAvailable(t *testing.T, timeout time.Duration, deps ...*appsv1.Deployment) {
	t.Helper()
	waitFor(t, timeout, func(ctx context.Context) (bool, error) {
		for _, d := range deps {
			got, err := e.kube.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			want := *got.Spec.Replicas
			if got.Status.ObservedGeneration < got.Generation || got.Status.UpdatedReplicas != want ||
				got.Status.AvailableReplicas != want || got.Status.Replicas != want {
				return false, fmt.Errorf("deployment %s/%s: %d updated, %d available of %d", d.Namespace, d.Name,
					got.Status.UpdatedReplicas, got.Status.AvailableReplicas, want)
			}
		}
		return true, nil
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

func waitFor(t *testing.T, timeout time.Duration, done func(context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := done(ctx)
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("condition not met within %s (last error: %v)", timeout, last)
	}
}
