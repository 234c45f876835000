// Package bench measures `meshroll fleet status` over many real API servers:
// ten API-only sandboxes (etcd + kube-apiserver, objects created directly)
// each holding Istio 1.23.2's rendered control-plane objects and a seeded
// mesh. It starts nothing unless a benchmark is asked for.
package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/test/e2e/fleet/fleettest"
)

// clusters is how many API servers the fleet has (MESHROLL_BENCH_CLUSTERS,
// default 10); pods how many pods each holds (MESHROLL_BENCH_CLUSTER_PODS,
// default 2,000).
func sizes() (clusters, pods int) {
	clusters, pods = 10, 2000
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_CLUSTERS")); err == nil && v > 0 {
		clusters = v
	}
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_CLUSTER_PODS")); err == nil && v > 0 {
		pods = v
	}
	return clusters, pods
}

var dirs []string

// benchNamespaces spread each cluster's workloads.
const benchNamespaces = 10

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // no benchmark asked for: no sandbox
	}
	tmp, err := os.MkdirTemp("", "meshroll-fleet-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n, _ := sizes()
	for i := range n {
		dirs = append(dirs, filepath.Join(tmp, fmt.Sprintf("c%02d", i)))
	}
	code := 1
	start := time.Now()
	if err := fleettest.Each(3, dirs, func(d string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		_, err := sandbox.Up(ctx, sandbox.Options{Dir: d, APIOnly: true})
		return err
	}); err != nil {
		fmt.Fprintf(os.Stderr, "fleet bench: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "fleet bench: %d API-only sandboxes up in %s\n", n, time.Since(start).Round(time.Second))
		code = m.Run()
	}
	_ = fleettest.Each(len(dirs), dirs, func(d string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return sandbox.Down(ctx, d)
	})
	if code == 0 {
		_ = os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// seedAll applies Istio's rendered objects (rendered once) and a mesh of
// pods to every cluster.
func seedAll(b *testing.B, pods int) {
	ctx := context.Background()
	objs, err := istio.Render(ctx, istio.RenderOptions{Version: "1.23.2", Revision: "1-23-2"})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range objs {
		unreachableHooks(o)
	}
	start := time.Now()
	if err := fleettest.Each(2, dirs, func(d string) error { return seed(ctx, d, objs, pods) }); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d clusters × %d pods in %s", len(dirs), pods, time.Since(start).Round(time.Second))
}

// unreachableHooks keeps Istio's webhooks (no istiod runs) out of the pod
// writes while leaving their namespace selectors, which inventory reads.
func unreachableHooks(o *unstructured.Unstructured) {
	if !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
		return
	}
	hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
	for _, h := range hooks {
		if m, ok := h.(map[string]any); ok {
			m["failurePolicy"] = "Ignore"
			m["objectSelector"] = map[string]any{"matchLabels": map[string]any{"meshroll.io/bench": "never"}}
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
}

func seed(ctx context.Context, dir string, objs []*unstructured.Unstructured, pods int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", sandbox.KubeconfigPath(dir))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// No controller-manager runs: the namespaces and their default
	// ServiceAccounts (pod admission needs them) are created here.
	nss := []string{istio.SystemNamespace}
	for i := range benchNamespaces {
		nss = append(nss, fmt.Sprintf("bench-%03d", i))
	}
	for _, ns := range nss {
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
		if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	a := controlplane.NewApplier(dc, kc.Discovery(), false)
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.DeepCopy())
		} else {
			rest = append(rest, o.DeepCopy())
		}
	}
	if _, err := a.Apply(ctx, crds); err != nil {
		return fmt.Errorf("apply CRDs in %s: %w", dir, err)
	}
	if _, err := a.Apply(ctx, rest); err != nil {
		return fmt.Errorf("apply Istio in %s: %w", dir, err)
	}
	// Pods are created directly (nothing would reconcile an owner), bound
	// to no node, each looking injected by 1-23-2: what inventory reads is
	// the same as in a live cluster.
	return fleettest.Each(16, make([]int, pods), indexed(func(i int) error {
		ns := fmt.Sprintf("bench-%03d", i%benchNamespaces)
		_, err := kc.CoreV1().Pods(ns).Create(ctx, injectedPod(ns, fmt.Sprintf("app-%03d-%05d", (i/10)%1000, i)), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}))
}

// indexed turns fn(i) into the per-item function Each wants, numbering the
// items in the order Each was handed them.
func indexed(fn func(i int) error) func(int) error {
	var mu sync.Mutex
	next := 0
	return func(int) error {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		return fn(i)
	}
}

// injectedPod is a pod as Istio 1.23.2's injector leaves it.
func injectedPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"app": name[:len("app-000")], istio.LabelRev: "1-23-2", "security.istio.io/tlsMode": "istio"},
			Annotations: map[string]string{"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"1-23-2"}`}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "istio-init", Image: "docker.io/istio/proxyv2:1.23.2"}},
			Containers: []corev1.Container{{Name: "app", Image: demo.PauseImage},
				{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.23.2"}},
		},
	}
}

// run times one meshroll process and returns its wall time and peak RSS.
func run(b *testing.B, bin string, args ...string) (time.Duration, int64) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("meshroll %s: %v", strings.Join(args, " "), err)
	}
	d := time.Since(start)
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return d, rss
}

// BenchmarkFleetStatus compares `meshroll fleet status` over every cluster
// with the slowest `meshroll status` of one of them (each a real process).
// Target: ≤ 1.5× the slowest single cluster. Memory per cluster is the
// fleet run's peak RSS above a single run's, per extra cluster.
func BenchmarkFleetStatus(b *testing.B) {
	_, pods := sizes()
	seedAll(b, pods)
	bin := fleettest.MustBuildMeshroll(b)
	file := filepath.Join(b.TempDir(), "fleet.yaml")
	var sb strings.Builder
	sb.WriteString("clusters:\n")
	for i, d := range dirs {
		fmt.Fprintf(&sb, "- name: c%02d\n  kubeconfig: %s\n  labels: {env: bench, shard: %q}\n", i, sandbox.KubeconfigPath(d), strconv.Itoa(i%3))
	}
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	var fleetNs, slowestNs, sumNs int64
	var fleetRSS, singleRSS int64
	b.ResetTimer()
	for b.Loop() {
		var slowest time.Duration
		for _, d := range dirs {
			t, rss := run(b, bin, "status", "-o", "json", "--kubeconfig", sandbox.KubeconfigPath(d))
			slowest = max(slowest, t)
			sumNs += t.Nanoseconds()
			singleRSS = max(singleRSS, rss)
		}
		t, rss := run(b, bin, "fleet", "status", "-o", "json", "--fleet", file, "--kubeconfig", sandbox.KubeconfigPath(dirs[0]))
		fleetNs += t.Nanoseconds()
		slowestNs += slowest.Nanoseconds()
		fleetRSS = max(fleetRSS, rss)
	}
	n := int64(len(dirs))
	b.ReportMetric(float64(fleetNs)/float64(slowestNs), "x-slowest-single")
	b.ReportMetric(float64(fleetNs)/float64(b.N)/1e6, "fleet-ms")
	b.ReportMetric(float64(slowestNs)/float64(b.N)/1e6, "slowest-single-ms")
	b.ReportMetric(float64(sumNs)/float64(b.N)/1e6, "sum-of-singles-ms")
	b.ReportMetric(float64(fleetRSS)/1024, "fleet-maxrss-MB")
	b.ReportMetric(float64(singleRSS)/1024, "single-maxrss-MB")
	b.ReportMetric(float64(fleetRSS-singleRSS)/1024/float64(n-1), "MB-per-extra-cluster")
}
