// Integration tests against the sandbox's real kube-apiserver, started once
// for the package by TestMain; `go test -short` skips them:
//
//	go test ./internal/inventory/
//	go test -run xxx -bench Read -benchtime 3x ./internal/inventory/
package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m)) }

// protobufClients builds clients the way Read's callers should.
func protobufClients(tb testing.TB) Clients {
	tb.Helper()
	cfg := sandboxtest.Config(tb)
	typed := rest.CopyConfig(cfg)
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kc, err := kubernetes.NewForConfig(typed)
	if err != nil {
		tb.Fatalf("failed to create kubernetes client: %v", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		tb.Fatalf("failed to create metadata client: %v", err)
	}
	return Clients{Kube: kc, Meta: mc}
}

func mustCreate[T any](tb testing.TB, what string, create func() (T, error)) {
	tb.Helper()
	if _, err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("failed to create %s: %v", what, err)
	}
}

// installFakeIstio creates the istio-system objects of revision 1-23-2 by
// hand. The injector webhook can never match (namespace selector on a label
// nobody has, failurePolicy Ignore): the sandbox has no kube-proxy to reach it.
func installFakeIstio(ctx context.Context, tb testing.TB, kc kubernetes.Interface) {
	const ns, rev = "istio-system", "1-23-2"
	labels := map[string]string{"app": "istiod", "istio.io/rev": rev}
	mustCreate(tb, "namespace", func() (any, error) {
		return kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	})
	mustCreate(tb, "istiod", func() (any, error) {
		return kc.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev, Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.23.2"}}}}},
		}, metav1.CreateOptions{})
	})
	mustCreate(tb, "istiod service", func() (any, error) {
		return kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)}}},
		}, metav1.CreateOptions{})
	})
	values, _ := json.Marshal(map[string]any{"global": map[string]any{"hub": "docker.io/istio", "tag": "1.23.2"}})
	mustCreate(tb, "injector configmap", func() (any, error) {
		return kc.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + rev, Labels: map[string]string{"istio.io/rev": rev}},
			Data:       map[string]string{"values": string(values)},
		}, metav1.CreateOptions{})
	})
	for _, w := range []struct{ name, tag, svc string }{
		{"istio-sidecar-injector-" + rev, "", "istiod-" + rev},
		{"istio-revision-tag-stale", "stale", "istiod-1-20-0"},
	} {
		l := map[string]string{"istio.io/rev": rev}
		if w.tag != "" {
			l["istio.io/tag"] = w.tag
		}
		mustCreate(tb, "webhook "+w.name, func() (any, error) {
			return kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionv1.MutatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: w.name, Labels: l},
				Webhooks: []admissionv1.MutatingWebhook{{
					Name: "rev.namespace.sidecar-injector.istio.io",
					ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{
						Namespace: ns, Name: w.svc, Path: ptr.To("/inject"), Port: ptr.To[int32](443)}},
					NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"meshroll.test/never": "true"}},
					FailurePolicy:           ptr.To(admissionv1.Ignore),
					SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
					AdmissionReviewVersions: []string{"v1"},
					Rules: []admissionv1.RuleWithOperations{{Operations: []admissionv1.OperationType{admissionv1.Create},
						Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
				}},
			}, metav1.CreateOptions{})
		})
	}
}

// meshedPodSpec looks like a pod the 1-23-2 injector produced.
func meshedTemplate(labels map[string]string, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"istio.io/rev": "1-23-2"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{
			{Name: "app", Image: "app:1"}, {Name: "istio-proxy", Image: image}}},
	}
}

func TestReadSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := protobufClients(t)
	kc := c.Kube
	installFakeIstio(ctx, t, kc)

	ns := "inv-" + strconv.FormatInt(time.Now().UnixNano()%1_000_000, 36)
	mustCreate(t, "namespace", func() (any, error) {
		return kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"istio.io/rev": "1-23-2"}}}, metav1.CreateOptions{})
	})
	webLabels := map[string]string{"app": "web"}
	mustCreate(t, "deployment", func() (any, error) {
		return kc.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: webLabels},
				Template: meshedTemplate(webLabels, "docker.io/istio/proxyv2:1.23.2")}}, metav1.CreateOptions{})
	})
	bare := meshedTemplate(nil, "docker.io/istio/proxyv2:1.22.1")
	mustCreate(t, "bare pod", func() (any, error) {
		return kc.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "debug", Annotations: bare.Annotations},
			Spec: bare.Spec}, metav1.CreateOptions{})
	})
	jobTpl := meshedTemplate(nil, "docker.io/istio/proxyv2:1.23.2")
	jobTpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	mustCreate(t, "job", func() (any, error) {
		return kc.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once"},
			Spec: batchv1.JobSpec{Template: jobTpl}}, metav1.CreateOptions{})
	})

	// Controllers create the pods asynchronously; poll until all four exist.
	var s *Snapshot
	for {
		var err error
		s, err = Read(ctx, c, time.Unix(0, 0))
		if err != nil {
			t.Fatalf("Read() error = %v", err)
		}
		if podsIn(s, ns) == 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pods in %s = %d, want 4 before timeout", ns, podsIn(s, ns))
		case <-time.After(500 * time.Millisecond):
		}
	}

	r := s.Revision("1-23-2")
	if r == nil || r.Version != "1.23.2" || !r.ServiceExists || r.ProxyImage != "docker.io/istio/proxyv2:1.23.2" || r.Deployment == "" {
		t.Errorf("revision 1-23-2 = %+v", r)
	}
	if got := s.Namespace(ns); got == nil || got.Injection.Revision != "1-23-2" {
		t.Errorf("namespace %s = %+v, want injected by 1-23-2", ns, got)
	}
	for _, w := range s.Webhooks {
		if w.Name == "istio-revision-tag-stale" && w.ServiceExists {
			t.Errorf("webhook %s targets a missing service but ServiceExists is true", w.Name)
		}
	}
	want := map[string]struct {
		restartable bool
		version     string
	}{
		"Deployment/web": {true, "1.23.2"},
		"Pod/debug":      {false, "1.22.1"},
		"Job/once":       {false, "1.23.2"},
	}
	for _, w := range s.Workloads {
		if w.Namespace != ns {
			continue
		}
		key := w.Kind + "/" + w.Name
		exp, ok := want[key]
		if !ok {
			t.Errorf("unexpected workload %s", key)
			continue
		}
		delete(want, key)
		if w.Restartable != exp.restartable || len(w.Proxies) != 1 || w.Proxies[0].Version != exp.version || w.Proxies[0].Revision != "1-23-2" {
			t.Errorf("workload %s = %+v, want restartable=%v version %s", key, w, exp.restartable, exp.version)
		}
	}
	if len(want) != 0 {
		t.Errorf("workloads missing from snapshot: %v", want)
	}
}

func podsIn(s *Snapshot, ns string) int {
	n := 0
	for i := range s.Workloads {
		if s.Workloads[i].Namespace == ns {
			p, term := s.Workloads[i].Total()
			n += p + term
		}
	}
	return n
}

// BenchmarkRead compares Read with the cheapest possible pod inventory, a
// paged metadata-only LIST of the same pods, and reports the ratio
// (target: ≤ 1.5). MESHROLL_BENCH_PODS sets the pod count (default 2,000).
func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	c := protobufClients(b)
	installFakeIstio(ctx, b, c.Kube)
	pods := 2000
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_PODS")); err == nil {
		pods = v
	}
	ns := "bench-" + strconv.Itoa(pods)
	mustCreate(b, "namespace", func() (any, error) {
		return c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"istio.io/rev": "1-23-2"}}}, metav1.CreateOptions{})
	})
	existing, err := c.Meta.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatalf("failed to list pods: %v", err)
	}
	tpl := meshedTemplate(map[string]string{"app": "bench"}, "docker.io/istio/proxyv2:1.23.2")
	for i := len(existing.Items); i < pods; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%06d", i), Labels: tpl.Labels, Annotations: tpl.Annotations}, Spec: tpl.Spec}
		if _, err := c.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			b.Fatalf("failed to create pod: %v", err)
		}
	}
	baseline := func() {
		err := eachMeta(ctx, c, corev1.SchemeGroupVersion.WithResource("pods"), func(*metav1.PartialObjectMetadata) {})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var readNs, baseNs int64
	for b.Loop() {
		t0 := time.Now()
		baseline()
		t1 := time.Now()
		if _, err := Read(ctx, c, t1); err != nil {
			b.Fatal(err)
		}
		readNs += time.Since(t1).Nanoseconds()
		baseNs += t1.Sub(t0).Nanoseconds()
	}
	b.ReportMetric(float64(readNs)/float64(baseNs), "x-baseline")
	b.ReportMetric(float64(readNs)/float64(b.N)/1e6, "read-ms")
	b.ReportMetric(float64(baseNs)/float64(b.N)/1e6, "baseline-ms")
}
