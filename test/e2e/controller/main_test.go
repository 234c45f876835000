// Package controller holds the end-to-end tests of `meshroll controller`:
// the built meshroll binary runs as two controller processes against the
// package's sandbox (real kube-apiserver, controllers, kwok and real
// istiods), a MeshUpgrade created with a plain client drives the whole
// upgrade, and the leader is killed mid-wave.
package controller

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
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
	toImage     = "docker.io/istio/proxyv2:1.24.2"
	leaseNS     = "meshroll-system"
)

func TestMain(m *testing.M) {
	code := sandboxtest.Main(m, sandboxtest.WithNodes(10))
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the meshroll binary, built once for all the package's tests:
// linking it takes about a minute on a loaded machine.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

type env struct {
	kube kubernetes.Interface
	dyn  dynamic.Interface
	bin  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: needs the sandbox (run without -short)")
	}
	cfg := sandboxtest.Config(t)
	e := &env{bin: buildMeshroll(t)}
	var err error
	if e.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	istiodtest.Start(t)
	start := time.Now()
	if _, err := controlplane.Install(t.Context(), controlplane.Clients{Kube: e.kube, Dynamic: e.dyn},
		controlplane.InstallOptions{Render: istio.RenderOptions{Version: fromVersion, Revision: fromRev}}); err != nil {
		t.Fatalf("install %s: %v", fromVersion, err)
	}
	t.Logf("installed %s in %s", fromVersion, time.Since(start).Round(time.Millisecond))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}}
	if _, err := e.kube.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := (upgrade.Store{Dynamic: e.dyn}).EnsureCRD(t.Context(), controlplane.NewApplier(e.dyn, e.kube.Discovery(), false)); err != nil {
		t.Fatal(err)
	}
	return e
}

// buildMeshroll builds the meshroll binary once for the package's tests:
// the controller runs as its own processes, killed with SIGKILL.
func buildMeshroll(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		if built.dir, built.err = os.MkdirTemp("", "meshroll-e2e-controller-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "meshroll")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/meshroll")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/meshroll: %w\n%s", err, b)
			return
		}
		t.Logf("built meshroll in %s", time.Since(start).Round(time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// seed creates the mesh on 1-23-2 and waits until every pod runs.
func (e *env) seed(t testing.TB, o demo.MigrationOptions) *demo.Plan {
	t.Helper()
	o.Revision = fromRev
	p, err := demo.MigrationPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Apply(t.Context(), e.kube, p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if err := demo.WaitReady(ctx, e.kube, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is one controller process.
type proc struct {
	name        string
	cmd         *exec.Cmd
	metrics     string
	done        chan struct{}
	extra       []string
	mu          sync.Mutex
	tail        []string
	killed      bool
	exitErr     error
	exitedEarly bool
}

// startController runs `meshroll controller` with the sandbox's admin
// kubeconfig until the test ends (or it is killed). metrics is the address
// it serves /metrics on ("" picks a free one): a replacement takes its
// predecessor's, so Prometheus keeps scraping it. extra are more flags
// (e.g. --as to run as a ServiceAccount); a replacement gets the same.
func (e *env) startController(t testing.TB, name string, leaseDuration time.Duration, metrics string, extra ...string) *proc {
	t.Helper()
	if metrics == "" {
		metrics = freeAddr(t)
	}
	probe := freeAddr(t)
	p := &proc{name: name, metrics: metrics, extra: extra, done: make(chan struct{})}
	p.cmd = exec.Command(e.bin, "controller", "--kubeconfig", sandboxtest.Kubeconfig(t),
		"--leader-election-namespace", leaseNS, "--metrics-bind-address", metrics, "--health-probe-bind-address", probe,
		"--lease-duration", leaseDuration.String(), "--renew-deadline", (leaseDuration * 3 / 4).String(), "--retry-period", "1s")
	p.cmd.Args = append(p.cmd.Args, extra...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start controller %s: %v", name, err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.tail = append(p.tail, s.Text())
			if len(p.tail) > 40 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.exitErr, p.exitedEarly = err, !p.killed
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	t.Logf("controller %s: pid %d, metrics %s", name, p.cmd.Process.Pid, metrics)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// logTail is the process's last log lines, for failure messages.
func (p *proc) logTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// crashed reports a process that exited on its own.
func (p *proc) crashed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		if p.exitedEarly {
			return fmt.Errorf("controller %s exited on its own: %v\n%s", p.name, p.exitErr, strings.Join(p.tail, "\n"))
		}
	default:
	}
	return nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// leader is the holder of the controllers' leader-election Lease.
func (e *env) leader(ctx context.Context) string {
	l, err := e.kube.CoordinationV1().Leases(leaseNS).Get(ctx, "meshroll-controller", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// stepper is the pid holding the upgrade's engine lease (host/pid/start),
// 0 when none: the process that is moving workloads right now.
func (e *env) stepper(ctx context.Context, upgradeName string) int {
	l, err := e.kube.CoordinationV1().Leases(istio.SystemNamespace).Get(ctx, "meshupgrade-"+upgradeName, metav1.GetOptions{})
	if err != nil {
		return 0
	}
	parts := strings.Split(ptr.Deref(l.Spec.HolderIdentity, ""), "/")
	if len(parts) != 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

// replicaSets counts ReplicaSets per Deployment: a workload moved exactly
// once has exactly two.
func (e *env) replicaSets(t testing.TB, nss []string) map[string]int {
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
