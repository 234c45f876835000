//go:build linux

package istiod_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2)))
}

// realVersion is the release whose istiod the test checks in depth and
// oldVersion the one installed before it, as a canary upgrade has them side
// by side; both are sandbox.PilotDiscoveryReleases, which `make sandbox-bin`
// prebuilds.
const (
	realVersion = "1.24.2"
	oldVersion  = "1.23.2"
)

// buildTimeout covers cold builds of pilot-discovery on two busy cores
// (about six minutes each alone) when the prebuild did not run.
const buildTimeout = 25 * time.Minute

var vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

// TestRealIstiodAnswersIstioWebhooks installs two revisions exactly as
// meshroll does (controlplane.Install, no webhook rewritten), lets the
// sandbox run a real pilot-discovery for each istiod pod, and checks what only
// the real istiods do: each injects what its own templates say (istio-init,
// istio-proxy of its release, sidecar.istio.io/status), their validation
// webhooks (the revision's and, through the default tag, the default
// validator) refuse invalid config, and removing a revision leaves no webhook
// on its istiod (istio/istio#35590).
func TestRealIstiodAnswersIstioWebhooks(t *testing.T) {
	cfg := sandboxtest.Config(t)
	runner := istiodtest.Start(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	rev := istio.RevisionName(realVersion)

	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	began := time.Now()
	for _, v := range []string{oldVersion, realVersion} {
		if _, err := sandbox.EnsurePilotDiscovery(ctx, v, testWriter{t}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	t.Logf("MEASURE pilot-discovery %s and %s ready to run (cached or built): %s", oldVersion, realVersion, time.Since(began).Round(time.Second))

	// install installs a release as meshroll does and returns its istiod: the
	// pod is Ready only once istiod answers its readiness probe, so meshroll's
	// install, waiting for the Deployment to be available, has waited for the
	// real istiod, and it serves now with no wait of the test's.
	install := func(version string) istiod.Instance {
		t.Helper()
		r := istio.RevisionName(version)
		began := time.Now()
		if _, err := controlplane.Install(t.Context(), controlplane.Clients{Kube: kube, Dynamic: dyn},
			controlplane.InstallOptions{Render: istio.RenderOptions{Version: version}}); err != nil {
			t.Fatal(err)
		}
		t.Logf("MEASURE install of %s, waiting for istiod available: %s", r, time.Since(began).Round(100*time.Millisecond))
		var in istiod.Instance
		for _, i := range runner.Instances(t.Context()) {
			if strings.HasPrefix(i.Pod, "istio-system/istiod-"+r+"-") {
				in = i
			}
		}
		if !in.Ready {
			t.Errorf("install of %s returned before istiod answered its readiness probe: %+v", r, runner.Instances(t.Context()))
			in = istiodtest.WaitReady(t, runner, "istio-system/istiod-"+r+"-", 3*time.Minute)
		}
		t.Logf("MEASURE istiod %s process started %s after install began; pod %s on %s",
			version, in.Started.Sub(began).Round(100*time.Millisecond), in.Pod, in.IP)
		return in
	}
	old := install(oldVersion)
	in := install(realVersion)

	t.Run("webhooks keep naming the istiod Service, with istiod's own CA", func(t *testing.T) {
		waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
			mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector-"+rev, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, h := range mwc.Webhooks {
				if h.ClientConfig.URL != nil || h.ClientConfig.Service == nil || h.ClientConfig.Service.Name != "istiod-"+rev {
					return false, fmt.Errorf("webhook %s was rewritten: %+v", h.Name, h.ClientConfig)
				}
				if len(h.ClientConfig.CABundle) == 0 {
					return false, fmt.Errorf("webhook %s has no caBundle yet", h.Name)
				}
			}
			return true, nil
		})
	})

	t.Run("a pod of a namespace labelled for the revision is injected by istiod", func(t *testing.T) {
		ns := "real-inject"
		createNamespace(t, kube, ns, map[string]string{istio.LabelRev: rev})
		pod := createPod(t, kube, ns, "app")
		names := func(cs []corev1.Container) (out []string) {
			for _, c := range cs {
				out = append(out, c.Name)
			}
			return out
		}
		if !hasContainer(pod.Spec.InitContainers, "istio-init") {
			t.Errorf("init containers = %v, want istio-init", names(pod.Spec.InitContainers))
		}
		proxy := container(pod.Spec.Containers, "istio-proxy")
		switch {
		case proxy == nil:
			t.Errorf("containers = %v, want istio-proxy", names(pod.Spec.Containers))
		case proxy.Image != "docker.io/istio/proxyv2:"+realVersion:
			t.Errorf("istio-proxy image = %q, want docker.io/istio/proxyv2:%s", proxy.Image, realVersion)
		}
		status := pod.Annotations["sidecar.istio.io/status"]
		if !strings.Contains(status, `"revision":"`+rev+`"`) || !strings.Contains(status, "istio-init") {
			t.Errorf("sidecar.istio.io/status = %q, want istiod's record of revision %s", status, rev)
		}
		if pod.Labels["service.istio.io/canonical-name"] != "app" || pod.Labels["security.istio.io/tlsMode"] != "istio" {
			t.Errorf("labels = %v, want istiod's canonical-name and tlsMode", pod.Labels)
		}
		t.Logf("injected: init %v, containers %v", names(pod.Spec.InitContainers), names(pod.Spec.Containers))
	})

	t.Run("each revision's validation webhook refuses an invalid VirtualService of its revision", func(t *testing.T) {
		for _, r := range []string{istio.RevisionName(oldVersion), rev} {
			ns := "real-validate-" + r
			createNamespace(t, kube, ns, nil)
			vs := func(name string, http []any) *unstructured.Unstructured {
				return &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
					"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{istio.LabelRev: r}},
					"spec":     map[string]any{"hosts": []any{"reviews"}, "http": http},
				}}
			}
			// The CRD's schema accepts an empty route; only istiod's validation
			// knows a route needs a destination, redirect or direct response.
			invalid := vs("invalid", []any{map[string]any{}})
			valid := vs("valid", []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}}}}})
			// istiod switches its validator to failurePolicy Fail once it has
			// checked that it answers; until then a refusal may not be its.
			var last error
			err := wait.PollUntilContextTimeout(t.Context(), 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				_, last = dyn.Resource(vsGVR).Namespace(ns).Create(ctx, invalid, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				return last != nil && strings.Contains(last.Error(), "denied the request"), nil
			})
			if err != nil {
				t.Fatalf("invalid VirtualService of %s not refused by its istiod: last answer %v", r, last)
			}
			t.Logf("%s refused: %v", r, last)
			if !strings.Contains(last.Error(), "validation.istio.io") {
				t.Errorf("refusal %q of %s's config does not come from istiod's webhook", last, r)
			}
			if _, err := dyn.Resource(vsGVR).Namespace(ns).Create(t.Context(), valid, metav1.CreateOptions{}); err != nil {
				t.Errorf("valid VirtualService of %s refused: %v", r, err)
			}
		}
	})

	t.Run("tags on the old revision move to the new one", func(t *testing.T) {
		// What a canary upgrade does last: the default tag (and with it
		// istiod-default-validator) and a named tag pointed at the old
		// revision, then moved; the old revision's removal below must leave
		// none of them on its istiod (istio/istio#35590).
		for _, v := range []string{oldVersion, realVersion} {
			for _, tag := range []string{"default", "canary"} {
				to := istio.RevisionName(v)
				if _, err := controlplane.SetTag(t.Context(), controlplane.Clients{Kube: kube, Dynamic: dyn},
					controlplane.TagOptions{Tag: tag, Revision: to, Version: v, Overwrite: true, Force: true}); err != nil {
					t.Fatalf("tag set %s --revision %s: %v", tag, to, err)
				}
			}
		}
	})

	t.Run("each revision's pods are injected by their own istiod", func(t *testing.T) {
		oldRev := istio.RevisionName(oldVersion)
		ns := "real-old"
		createNamespace(t, kube, ns, map[string]string{istio.LabelRev: oldRev})
		pod := createPod(t, kube, ns, "app")
		if proxy := container(pod.Spec.Containers, "istio-proxy"); proxy == nil || proxy.Image != "docker.io/istio/proxyv2:"+oldVersion {
			t.Errorf("pod of %s not injected with proxyv2:%s: %+v", oldRev, oldVersion, pod.Spec.Containers)
		}
		if status := pod.Annotations["sidecar.istio.io/status"]; !strings.Contains(status, `"revision":"`+oldRev+`"`) {
			t.Errorf("sidecar.istio.io/status = %q, want revision %s", status, oldRev)
		}
		// Nothing may use the old revision when it is removed below.
		if err := kube.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		if err := kube.CoreV1().Namespaces().Delete(t.Context(), ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
			_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
	})

	t.Run("the default tag's webhooks reach the same istiod", func(t *testing.T) {
		if _, err := controlplane.SetTag(t.Context(), controlplane.Clients{Kube: kube, Dynamic: dyn},
			controlplane.TagOptions{Tag: "default", Revision: rev, Version: realVersion, Force: true}); err != nil {
			t.Fatal(err)
		}
		ns := "real-tag"
		createNamespace(t, kube, ns, map[string]string{"istio-injection": "enabled"})
		pod := createPod(t, kube, ns, "tagged")
		if proxy := container(pod.Spec.Containers, "istio-proxy"); proxy == nil || proxy.Image != "docker.io/istio/proxyv2:"+realVersion {
			t.Errorf("pod of an istio-injection=enabled namespace not injected through the default tag: %+v", pod.Spec.Containers)
		}
		// istiod-default-validator validates config with no revision label.
		invalid := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": "invalid-unlabelled", "namespace": ns},
			"spec":     map[string]any{"hosts": []any{"reviews"}, "http": []any{map[string]any{}}},
		}}
		var last error
		err := wait.PollUntilContextTimeout(t.Context(), 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, last = dyn.Resource(vsGVR).Namespace(ns).Create(ctx, invalid, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return last != nil && strings.Contains(last.Error(), "denied the request"), nil
		})
		if err != nil {
			t.Errorf("unlabelled invalid VirtualService not refused through istiod-default-validator: last answer %v", last)
		} else {
			t.Logf("refused: %v", last)
		}
	})

	t.Run("istiod runs as its pod, on the pod's address", func(t *testing.T) {
		if rss, err := rssMiB(in.PID); err == nil {
			t.Logf("MEASURE istiod %s RSS: %d MiB", in.Pod, rss)
		}
		pod, err := kube.CoreV1().Pods("istio-system").Get(t.Context(), strings.TrimPrefix(in.Pod, "istio-system/"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pod.Status.PodIP != in.IP {
			t.Errorf("istiod serves %s, its pod has %s", in.IP, pod.Status.PodIP)
		}
		// The real endpoints controller publishes the pod's address; the API
		// server calls the webhooks there (--enable-aggregator-routing).
		slices, err := kube.DiscoveryV1().EndpointSlices("istio-system").List(t.Context(),
			metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=istiod-" + rev})
		var addrs []string
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				addrs = append(addrs, e.Addresses...)
			}
		}
		if err != nil || len(addrs) != 1 || addrs[0] != in.IP {
			t.Errorf("Service istiod-%s endpoint addresses = %v, %v; want [%s]", rev, addrs, err, in.IP)
		}
	})

	t.Run("a killed istiod is restarted", func(t *testing.T) {
		if err := syscall.Kill(in.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		again := waitInstance(t, runner, func(i istiod.Instance) bool { return i.Pod == in.Pod && i.PID != in.PID && i.Ready })
		t.Logf("MEASURE restart after SIGKILL: ready again in %s (restarts %d)", time.Since(began).Round(100*time.Millisecond), again.Restarts)
		if again.Restarts < 1 {
			t.Errorf("restarts = %d, want ≥ 1", again.Restarts)
		}
		in = again
	})

	t.Run("deleting the pod stops its istiod; the replacement pod gets its own", func(t *testing.T) {
		name := strings.TrimPrefix(in.Pod, "istio-system/")
		if err := kube.CoreV1().Pods("istio-system").Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		next := waitInstance(t, runner, func(i istiod.Instance) bool {
			return i.Pod != in.Pod && strings.HasPrefix(i.Pod, "istio-system/istiod-"+rev+"-") && i.Ready
		})
		for _, i := range runner.Instances(t.Context()) {
			if i.Pod == in.Pod {
				t.Errorf("istiod of deleted pod %s still runs: %+v", in.Pod, i)
			}
		}
		if syscall.Kill(in.PID, 0) == nil {
			t.Errorf("process %d of the deleted pod still exists", in.PID)
		}
		t.Logf("replacement %s on %s (the deleted pod had %s)", next.Pod, next.IP, in.IP)
		// And it answers the webhooks: a second injected pod.
		pod := createPod(t, kube, "real-inject", "app2")
		if !hasContainer(pod.Spec.Containers, "istio-proxy") {
			t.Errorf("pod created after the replacement was not injected: %+v", pod.Spec.Containers)
		}
	})

	t.Run("removing the old revision stops its istiod and leaves no webhook on it", func(t *testing.T) {
		oldRev := istio.RevisionName(oldVersion)
		snap, err := inventory.Read(t.Context(), inventory.Clients{Kube: kube, Meta: metadata.NewForConfigOrDie(cfg)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := controlplane.Remove(t.Context(), controlplane.Clients{Kube: kube, Dynamic: dyn}, snap,
			controlplane.RemoveOptions{Revision: oldRev}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
			for _, i := range runner.Instances(ctx) {
				if strings.HasPrefix(i.Pod, "istio-system/istiod-"+oldRev+"-") {
					return false, fmt.Errorf("istiod of %s still runs: %+v", oldRev, i)
				}
			}
			return true, nil
		})
		if syscall.Kill(old.PID, 0) == nil {
			t.Errorf("process %d of the removed revision still exists", old.PID)
		}
		// istio/istio#35590: no webhook may point at the removed istiod.
		mwcs, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range mwcs.Items {
			if c.Labels[istio.LabelRev] == oldRev {
				t.Errorf("MutatingWebhookConfiguration %s is still labelled for removed revision %s", c.Name, oldRev)
			}
			for _, h := range c.Webhooks {
				if s := h.ClientConfig.Service; s != nil && s.Name == "istiod-"+oldRev {
					t.Errorf("MutatingWebhookConfiguration %s still calls Service %s", c.Name, s.Name)
				}
			}
		}
		vwcs, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range vwcs.Items {
			if c.Labels[istio.LabelRev] == oldRev {
				t.Errorf("ValidatingWebhookConfiguration %s is still labelled for removed revision %s", c.Name, oldRev)
			}
			for _, h := range c.Webhooks {
				if s := h.ClientConfig.Service; s != nil && s.Name == "istiod-"+oldRev {
					t.Errorf("ValidatingWebhookConfiguration %s still calls Service %s", c.Name, s.Name)
				}
			}
		}
		// What the remaining revision serves still works.
		if pod := createPod(t, kube, "real-inject", "after-remove"); !hasContainer(pod.Spec.Containers, "istio-proxy") {
			t.Errorf("pod created after the remove was not injected: %+v", pod.Spec.Containers)
		}
	})
}

// waitInstance waits until one of the runner's istiods satisfies ok.
func waitInstance(t *testing.T, r *istiod.Runner, ok func(istiod.Instance) bool) istiod.Instance {
	t.Helper()
	var found istiod.Instance
	waitFor(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		ins := r.Instances(ctx)
		for _, i := range ins {
			if ok(i) {
				found = i
				return true, nil
			}
		}
		return false, fmt.Errorf("istiods: %+v", ins)
	})
	return found
}

func createNamespace(t *testing.T, kube kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// createPod creates a bare pod, retrying while the namespace's default
// ServiceAccount does not exist yet.
func createPod(t *testing.T, kube kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	var got *corev1.Pod
	waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		got, err = kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err == nil, err
	})
	return got
}

func hasContainer(cs []corev1.Container, name string) bool { return container(cs, name) != nil }

func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// rssMiB reads a process's resident set from /proc.
func rssMiB(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.Fields(rest)[0])
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func waitFor(t *testing.T, timeout time.Duration, done func(context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
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
