package injector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestMain starts one sandbox for the package; with -short only the unit
// tests run and the integration test skips.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2))) }

// startInjector runs Run in the background and waits until the endpoint it
// publishes answers /healthz. stop cancels it and returns Run's error.
func startInjector(t *testing.T, cfg *rest.Config, cs kubernetes.Interface, certDir string) (Endpoint, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	// A record left by an earlier run must not be mistaken for this one.
	err := cs.CoreV1().ConfigMaps(EndpointNamespace).Delete(ctx, EndpointName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() { errc <- Run(ctx, cfg, Options{Addr: "127.0.0.1:0", CertDir: certDir, Logger: log}) }()
	stop := func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("Run did not return within 30s of cancel")
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-errc:
			cancel()
			t.Fatalf("Run() returned early: %v", err)
		default:
		}
		ep, found, err := LoadEndpoint(ctx, cs)
		if err == nil && found {
			return ep, stop
		}
		if time.Now().After(deadline) {
			_ = stop()
			t.Fatalf("injector endpoint not published within 60s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSandboxInjection(t *testing.T) {
	cfg := sandboxtest.Config(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	suffix := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	revNS, plainNS, mwcName := "inj-rev-"+suffix, "inj-plain-"+suffix, "istio-sidecar-injector-1-23-2-"+suffix

	mustCreateNamespace(t, cs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: istio.SystemNamespace}})
	mustCreateNamespace(t, cs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: revNS, Labels: map[string]string{istio.LabelRev: fixtureRev}}})
	mustCreateNamespace(t, cs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plainNS}})
	t.Cleanup(func() {
		for _, ns := range []string{revNS, plainNS} {
			_ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
		}
	})
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-1-23-2", Namespace: istio.SystemNamespace},
		Data:       map[string]string{"values": fixtureValues},
	}
	if _, err := cs.CoreV1().ConfigMaps(istio.SystemNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	certDir := t.TempDir()
	ep, stop := startInjector(t, cfg, cs, certDir)
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()

	// Istio's revision injector, rewritten the way meshroll applies it in a sandbox.
	obj := parseObject(t, revisionInjectorYAML)
	obj.SetName(mwcName)
	if changed, err := Rewrite(obj, ep); err != nil || !changed {
		t.Fatalf("Rewrite() = %v, %v", changed, err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &mwc); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create rewritten webhook: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.WithoutCancel(ctx), mwcName, metav1.DeleteOptions{})
	})

	// The API server picks webhook configurations up asynchronously: probe with
	// dry-run creations (the webhooks have no side effects) until one is injected.
	waitFor(t, 30*time.Second, "webhook to take effect", func() (bool, error) {
		pod, err := cs.CoreV1().Pods(revNS).Create(ctx, testPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		return proxyOf(pod) != nil, nil
	})

	var injected *corev1.Pod
	waitFor(t, 30*time.Second, "pod creation", func() (bool, error) {
		injected, err = cs.CoreV1().Pods(revNS).Create(ctx, testPod("bare"), metav1.CreateOptions{})
		return err == nil, err
	})
	if p := proxyOf(injected); p == nil || p.Image != fixtureImage {
		t.Fatalf("pod in %s: containers %v, want istio-proxy with %s", revNS, injected.Spec.Containers, fixtureImage)
	}
	if injected.Annotations[istio.LabelRev] != fixtureRev || injected.Annotations[istio.AnnotationSidecarStatus] != fixtureStatus {
		t.Errorf("injected pod labels %v, status %q", injected.Labels, injected.Annotations[istio.AnnotationSidecarStatus])
	}

	// A Deployment's pods reach the webhook with only generateName.
	replicas := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"run": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"run": "web"}},
				Spec:       testPod("").Spec,
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(revNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the Deployment's pod", func() (bool, error) {
		pods, err := cs.CoreV1().Pods(revNS).List(ctx, metav1.ListOptions{LabelSelector: "run=web"})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		p := &pods.Items[0]
		if c := proxyOf(p); c == nil || c.Image != fixtureImage {
			return false, fmt.Errorf("deployment pod %s not injected: %v", p.Name, containerNames(p.Spec.Containers))
		}
		if got := p.Labels["service.istio.io/canonical-name"]; got != "web" {
			return false, fmt.Errorf("canonical-name = %q, want web", got)
		}
		return true, nil
	})

	var plain *corev1.Pod
	waitFor(t, 30*time.Second, "pod creation", func() (bool, error) {
		plain, err = cs.CoreV1().Pods(plainNS).Create(ctx, testPod("bare"), metav1.CreateOptions{})
		return err == nil, err
	})
	if proxyOf(plain) != nil || plain.Annotations[istio.AnnotationSidecarStatus] != "" {
		t.Errorf("pod in unlabelled namespace %s was injected: %v", plainNS, containerNames(plain.Spec.Containers))
	}

	// An opted-out pod in the injected namespace stays as it is (objectSelector).
	opted := testPod("opted")
	opted.Labels = map[string]string{istio.LabelSidecarInject: "false"}
	if got, err := cs.CoreV1().Pods(revNS).Create(ctx, opted, metav1.CreateOptions{}); err != nil || proxyOf(got) != nil {
		t.Errorf("opted-out pod: err %v, injected %v", err, err == nil && proxyOf(got) != nil)
	}

	// A restart on the same CertDir keeps the CA, so rewritten webhooks stay valid.
	stopped = true
	if err := stop(); err != nil {
		t.Fatalf("Run() = %v after cancel, want nil", err)
	}
	ep2, stop2 := startInjector(t, cfg, cs, certDir)
	if err := stop2(); err != nil {
		t.Errorf("second Run() = %v", err)
	}
	if !bytes.Equal(ep.CABundle, ep2.CABundle) {
		t.Error("restart on the same CertDir published another CA bundle")
	}
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func mustCreateNamespace(t *testing.T, cs kubernetes.Interface, ns *corev1.Namespace) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test with cond's last error
// after timeout. Errors are retried: a fresh namespace lacks its default
// ServiceAccount for a moment, and webhook configurations arrive late.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		if err != nil && !retriable(err) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func retriable(err error) bool {
	msg := err.Error()
	return apierrors.IsForbidden(err) && strings.Contains(msg, "serviceaccount") ||
		apierrors.IsServerTimeout(err) || apierrors.IsInternalError(err) ||
		strings.Contains(msg, "not injected") || strings.Contains(msg, "canonical-name") ||
		strings.Contains(msg, "service account") || strings.Contains(msg, "webhook")
}
