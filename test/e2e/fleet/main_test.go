// Package fleet is the end-to-end test of `meshroll fleet`: a hub and four
// member sandboxes side by side (each its own real kube-apiserver, etcd,
// controllers and kwok, each with Istio 1.23.2 installed from its real
// charts and a small seeded mesh), members registered in the hub as
// Secrets, and the built meshroll binary as the fleet engine, killed and
// resumed.
package fleet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/test/e2e/fleet/fleettest"
)

const (
	fromVersion = "1.23.2"
	toVersion   = "1.24.2"
	fromImage   = "docker.io/istio/proxyv2:1.23.2"
	toImage     = "docker.io/istio/proxyv2:1.24.2"
)

// member is one member sandbox.
type member struct {
	name, env  string
	dir        string
	kubeconfig string
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	nss        []string
	// proxy fronts the member's API server for the prod member, so the test
	// can make it unreachable mid-stage.
	proxy *tcpProxy
}

// world is the package's hub and members, started once in TestMain.
type world struct {
	bin     string
	hubDir  string
	hubKC   string
	hub     kubernetes.Interface
	hubDyn  dynamic.Interface
	members []*member
	tmp     string
}

var the *world

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() || os.Getenv("MESHROLL_SKIP_FLEET_E2E") != "" {
		fmt.Println("fleet e2e skipped: -short (or MESHROLL_SKIP_FLEET_E2E) set; it needs five sandboxes")
		os.Exit(m.Run())
	}
	tmp, err := os.MkdirTemp("", "meshroll-fleet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := &world{tmp: tmp}
	code := 1
	if err := w.setUp(); err != nil {
		fmt.Fprintf(os.Stderr, "fleet e2e setup: %v\n", err)
	} else {
		the = w
		code = m.Run()
	}
	w.tearDown()
	if code == 0 {
		_ = os.RemoveAll(tmp)
	} else {
		fmt.Fprintf(os.Stderr, "fleet e2e: sandbox logs kept under %s\n", tmp)
	}
	os.Exit(code)
}

func (w *world) setUp() error {
	start := time.Now()
	var err error
	if w.bin, err = fleettest.BuildMeshroll(w.tmp); err != nil {
		return fmt.Errorf("go build meshroll: %w", err)
	}
	w.hubDir = filepath.Join(w.tmp, "hub")
	envs := []string{"testing", "dev", "preprod", "prod"}
	for _, env := range envs {
		w.members = append(w.members, &member{name: env + "-1", env: env, dir: filepath.Join(w.tmp, env)})
	}
	// Two sandboxes start at a time: the machine has two cores.
	dirs := []string{w.hubDir}
	for _, m := range w.members {
		dirs = append(dirs, m.dir)
	}
	if err := fleettest.Each(2, dirs, func(dir string) error {
		if dir == w.hubDir {
			// The hub only stores Secrets, Leases and FleetUpgrades: an
			// API server alone, which claims none of the machine's few
			// routed pod ranges that member sandboxes need for istiod.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if _, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, APIOnly: true}); err != nil {
				return fmt.Errorf("sandbox up %s: %w", dir, err)
			}
			return nil
		}
		out, err := exec.Command(w.bin, "sandbox", "up", "--dir", dir, "--nodes", "2").CombinedOutput()
		if err != nil {
			return fmt.Errorf("sandbox up %s: %w\n%s", dir, err, out)
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fleet e2e: 5 sandboxes up in %s\n", time.Since(start).Round(time.Second))
	w.hubKC = filepath.Join(w.hubDir, "kubeconfig")
	if w.hub, w.hubDyn, err = clients(w.hubKC); err != nil {
		return err
	}
	for _, m := range w.members {
		m.kubeconfig = filepath.Join(m.dir, "kubeconfig")
		if m.kube, m.dyn, err = clients(m.kubeconfig); err != nil {
			return err
		}
	}
	if err := fleettest.Each(2, w.members, w.seed); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fleet e2e: members seeded on %s in %s\n", fromVersion, time.Since(start).Round(time.Second))
	return w.register()
}

func (w *world) tearDown() {
	for _, m := range w.members {
		if m.proxy != nil {
			m.proxy.close()
		}
	}
	dirs := []string{w.hubDir}
	for _, m := range w.members {
		dirs = append(dirs, m.dir)
	}
	_ = fleettest.Each(len(dirs), dirs, func(dir string) error {
		if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err != nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, w.bin, "sandbox", "down", "--dir", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "sandbox down %s: %v\n%s", dir, err, out)
		}
		return nil
	})
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}

func clients(kubeconfig string) (kubernetes.Interface, dynamic.Interface, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	return kc, dc, err
}

// seed installs 1.23.2 in a member and a small mesh: 4 Deployments in 2
// namespaces (one labelled for the revision, one by pod template).
func (w *world) seed(m *member) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cp := controlplane.Clients{Kube: m.kube, Dynamic: m.dyn}
	if _, err := controlplane.Install(ctx, cp, controlplane.InstallOptions{Render: istio.RenderOptions{Version: fromVersion, Revision: istio.RevisionName(fromVersion)}}); err != nil {
		return fmt.Errorf("install %s in %s: %w", fromVersion, m.name, err)
	}
	p, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "app", Namespaces: 2, Workloads: 4, Revision: istio.RevisionName(fromVersion)})
	if err != nil {
		return err
	}
	if err := demo.Apply(ctx, m.kube, p); err != nil {
		return fmt.Errorf("seed %s: %w", m.name, err)
	}
	if err := demo.WaitReady(ctx, m.kube, p); err != nil {
		return fmt.Errorf("seed %s: %w", m.name, err)
	}
	m.nss = p.NamespaceNames()
	return nil
}

// register stores every member's kubeconfig as a Secret in the hub; prod's
// points at a TCP proxy in front of its API server.
func (w *world) register() error {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fleet.DefaultNamespace}}
	if _, err := w.hub.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, m := range w.members {
		kc, err := os.ReadFile(m.kubeconfig)
		if err != nil {
			return err
		}
		if m.env == "prod" {
			if m.proxy, kc, err = proxied(m.kubeconfig); err != nil {
				return err
			}
		}
		labels := map[string]string{fleet.LabelCluster: m.name, "env": m.env}
		if m.env == "testing" {
			labels["tier"] = "canary"
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: m.name + "-kubeconfig", Namespace: fleet.DefaultNamespace, Labels: labels},
			Data: map[string][]byte{fleet.KeyValue: kc}}
		if _, err := w.hub.CoreV1().Secrets(fleet.DefaultNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// proxied returns a proxy in front of the kubeconfig's API server and the
// kubeconfig rewritten to go through it.
func proxied(path string) (*tcpProxy, []byte, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, err
	}
	var target string
	for _, c := range cfg.Clusters {
		target = c.Server[len("https://"):]
	}
	p, err := newTCPProxy(target)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + p.addr
	}
	b, err := clientcmd.Write(*cfg)
	return p, b, err
}
