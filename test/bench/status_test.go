package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/manifest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// No benchmark asked for (plain `go test ./...`): start no sandbox.
		os.Exit(m.Run())
	}
	// Only the API server and etcd: seeded pods and ReplicaSets stay exactly as
	// created (no controller reconciles them, no kwok rewrites their status),
	// so both sides of the comparison read the same, still objects.
	os.Exit(sandboxtest.Main(m, sandboxtest.WithAPIOnly()))
}

const (
	proxyImage = "docker.io/istio/proxyv2:1.23.2"
	benchRev   = "1-23-2"
)

// scale reads the seeded size from MESHROLL_BENCH_PODS (default 50,000) with
// ten pods per workload, as the foundation issue asks.
func scale() (pods, workloads int) {
	pods = 50000
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_PODS")); err == nil && v > 0 {
		pods = v
	}
	return pods, max(pods/10, 1)
}

// BenchmarkStatus compares `meshroll status -o json` (a real process, so its
// peak RSS is measured) with a paged metadata-only LIST of the same pods, the
// cheapest read that still sees every pod. Targets: ≤ 1.5× the LIST, ≤ 300 MB.
func BenchmarkStatus(b *testing.B) {
	ctx := context.Background()
	cfg := rest.CopyConfig(sandboxtest.Config(b))
	pods, workloads := scale()
	seedStart := time.Now()
	if err := seed(ctx, b, cfg, pods, workloads); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d workloads / %d pods in %s", workloads, pods, time.Since(seedStart).Round(time.Second))
	bin := buildMeshroll(b)
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig := sandboxtest.Kubeconfig(b)
	var statusNs, listNs int64
	var maxRSS int64
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		n, err := metadataList(ctx, mc)
		if err != nil {
			b.Fatal(err)
		}
		if n < pods {
			b.Fatalf("metadata LIST saw %d pods, want ≥ %d", n, pods)
		}
		t1 := time.Now()
		cmd := exec.Command(bin, "status", "-o", "json", "--kubeconfig", kubeconfig)
		cmd.Stdout, cmd.Stderr = nil, os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("meshroll status: %v", err)
		}
		statusNs += time.Since(t1).Nanoseconds()
		listNs += t1.Sub(t0).Nanoseconds()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = max(maxRSS, ru.Maxrss) // KiB on Linux
		}
	}
	b.ReportMetric(float64(statusNs)/float64(listNs), "x-list")
	b.ReportMetric(float64(statusNs)/float64(b.N)/1e6, "status-ms")
	b.ReportMetric(float64(listNs)/float64(b.N)/1e6, "list-ms")
	b.ReportMetric(float64(maxRSS)/1024, "status-maxrss-MB")
}

func metadataList(ctx context.Context, mc metadata.Interface) (int, error) {
	n := 0
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return mc.Resource(corev1.SchemeGroupVersion.WithResource("pods")).List(ctx, opts)
	})
	p.PageSize = 500
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(runtime.Object) error { n++; return nil })
	return n, err
}

func buildMeshroll(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "meshroll")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/meshroll/meshroll/cmd/meshroll")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("go build meshroll: %v", err)
	}
	return bin
}

// seed installs Istio 1.23.2's real control-plane objects (nothing runs them:
// inventory reads objects, not processes) and workloads/pods: a Deployment,
// its ReplicaSet and ten pods per workload, each pod injected-looking.
// It is idempotent so `-count` reruns reuse the seeded cluster.
func seed(ctx context.Context, b *testing.B, cfg *rest.Config, pods, workloads int) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 2000, 4000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := applyIstio(ctx, kc, dc); err != nil {
		return err
	}
	const namespaces = 50
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%02d", i), Labels: map[string]string{istio.LabelRev: benchRev}}}
		if _, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		// No controller-manager runs to create it, and pod admission needs it.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
		if _, err := kc.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	perWorkload := max(pods/workloads, 1)
	jobs := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range jobs {
				if err := seedWorkload(ctx, kc, fmt.Sprintf("scale-%02d", w%namespaces), fmt.Sprintf("svc-%05d", w), perWorkload); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for w := range workloads {
		jobs <- w
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func applyIstio(ctx context.Context, kc kubernetes.Interface, dc dynamic.Interface) error {
	objs, err := istio.Render(ctx, istio.RenderOptions{Version: "1.23.2", Revision: benchRev})
	if err != nil {
		return err
	}
	for _, o := range objs {
		neverCall(o)
	}
	crds, rest := manifest.Split(objs)
	a := controlplane.NewApplier(dc, kc.Discovery(), false)
	if _, err := a.Apply(ctx, crds); err != nil {
		return err
	}
	names := make([]string, 0, len(crds))
	for _, c := range crds {
		names = append(names, c.GetName())
	}
	if err := a.WaitEstablished(ctx, names, time.Minute); err != nil {
		return err
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: istio.SystemNamespace}}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = a.Apply(ctx, rest)
	return err
}

func seedWorkload(ctx context.Context, kc kubernetes.Interface, ns, name string, replicas int) error {
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)), Paused: true,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: appSpec()},
		},
	}
	d, err := kc.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil // seeded by an earlier run
	}
	if err != nil {
		return err
	}
	rsLabels := map[string]string{"app": name, "pod-template-hash": "bench"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-bench", Namespace: ns, Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: appSpec()},
		},
	}
	r, err := kc.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	owner := *metav1.NewControllerRef(r, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	for i := range replicas {
		spec := appSpec()
		spec.NodeName = fmt.Sprintf("node-%d", i%10)
		spec.Containers = append(spec.Containers, corev1.Container{Name: istio.ProxyContainer, Image: proxyImage})
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-bench-%03d", name, i), Namespace: ns, Labels: rsLabels,
				Annotations: map[string]string{
					istio.LabelRev:                benchRev,
					istio.AnnotationSidecarStatus: `{"containers":["istio-proxy"],"revision":"` + benchRev + `"}`,
				},
				OwnerReferences: []metav1.OwnerReference{owner},
			},
			Spec: spec,
		}
		if _, err := kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

func appSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}
}

// neverCall makes Istio's webhooks match no object: no istiod runs in an
// API-only sandbox, and an API server must never try to reach the Service
// names they carry. Inventory reads them as objects all the same.
func neverCall(o *unstructured.Unstructured) {
	if o.GetKind() != "MutatingWebhookConfiguration" && o.GetKind() != "ValidatingWebhookConfiguration" {
		return
	}
	hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
	for _, h := range hooks {
		m, ok := h.(map[string]any)
		if !ok {
			continue
		}
		m["failurePolicy"] = "Ignore"
		m["objectSelector"] = map[string]any{"matchLabels": map[string]any{"meshroll.io/never": "match"}}
	}
	_ = unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
}
