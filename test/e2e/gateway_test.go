package e2e

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gateway"
	"github.com/meshroll/meshroll/internal/istio"
)

// TestGatewayBlueGreen installs two colours of one ingress gateway, exposes
// the old one, switches to the new one and back while watching the Service,
// and proves from the watch that the selector named exactly one colour at
// every observed instant; a switch to an unready or missing colour is
// refused and changes nothing.
func TestGatewayBlueGreen(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	ctx := t.Context()
	const gw, ns = "ingress", "istio-ingress"
	blue, green := "1-23-2", "1-24-2"

	for _, v := range []string{"1.23.2", "1.24.2"} {
		start := time.Now()
		if _, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{
			Render: istio.RenderOptions{Version: v, Revision: istio.RevisionName(v)},
		}); err != nil {
			t.Fatalf("install control plane %s: %v", v, err)
		}
		t.Logf("control plane %s installed in %s", v, time.Since(start).Round(time.Millisecond))
	}
	clients := gateway.Clients{Kube: e.kube, Dynamic: e.dyn}
	for _, rev := range []string{blue, green} {
		start := time.Now()
		changes, err := gateway.Install(ctx, clients, gateway.InstallOptions{Name: gw, Namespace: ns, Revision: rev, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatalf("install gateway colour %s: %v", rev, err)
		}
		t.Logf("gateway colour %s installed and ready in %s (%s)", rev, time.Since(start).Round(time.Millisecond), controlplane.Summarize(changes))
	}
	// Installing again is a no-op.
	changes, err := gateway.Install(ctx, clients, gateway.InstallOptions{Name: gw, Namespace: ns, Revision: blue, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	for _, ch := range changes {
		if ch.Action != controlplane.Unchanged {
			t.Errorf("reinstall changed %s", ch)
		}
	}
	if _, err := gateway.Install(ctx, clients, gateway.InstallOptions{Name: gw, Namespace: ns, Revision: "1-99-0"}); err == nil ||
		!strings.Contains(err.Error(), `revision "1-99-0" is not installed`) {
		t.Errorf("install for a missing revision: err = %v, want 'is not installed'", err)
	}

	// Two colours: expose must be told which.
	if _, _, err := gateway.Expose(ctx, clients, gateway.ExposeOptions{Name: gw, Namespace: ns}); err == nil ||
		!strings.Contains(err.Error(), "choose one with --to") {
		t.Fatalf("expose with two colours and no --to: err = %v, want a refusal", err)
	}
	rev, _, err := gateway.Expose(ctx, clients, gateway.ExposeOptions{Name: gw, Namespace: ns, To: blue})
	if err != nil || rev != blue {
		t.Fatalf("expose --to %s = %q, %v", blue, rev, err)
	}
	svc, err := e.kube.CoreV1().Services(ns).Get(ctx, gw, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Labels[gateway.LabelManagedBy] != gateway.ManagedBy {
		t.Fatalf("service type %s labels %v: want a LoadBalancer managed by meshroll", svc.Spec.Type, svc.Labels)
	}
	for _, r := range []string{blue, green} {
		own, err := e.kube.CoreV1().Services(ns).Get(ctx, gateway.DeploymentName(gw, r), metav1.GetOptions{})
		if err != nil || own.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("colour %s's own service: %v, type %v; want ClusterIP", r, err, own.Spec.Type)
		}
	}
	// Re-exposing keeps the colour and changes nothing.
	if rev, changes, err := gateway.Expose(ctx, clients, gateway.ExposeOptions{Name: gw, Namespace: ns}); err != nil || rev != blue ||
		len(changes) != 1 || changes[0].Action != controlplane.Unchanged {
		t.Errorf("re-expose = %q, %v, %v; want %s unchanged", rev, changes, err, blue)
	}
	assertSelects(t, e, ns, gw, blue)

	_, stop := watchService(t, e, ns, gw, svc.ResourceVersion)
	for _, to := range []string{green, blue} {
		start := time.Now()
		res, err := gateway.Switch(ctx, e.kube, gateway.SwitchOptions{Name: gw, Namespace: ns, To: to, Timeout: time.Minute})
		if err != nil || !res.Changed || res.To != to {
			t.Fatalf("switch to %s = %+v, %v", to, res, err)
		}
		t.Logf("switched %s -> %s in %s", res.From, res.To, time.Since(start).Round(time.Millisecond))
		assertSelects(t, e, ns, gw, to)
	}
	// Switching to the live colour is a no-op.
	if res, err := gateway.Switch(ctx, e.kube, gateway.SwitchOptions{Name: gw, Namespace: ns, To: blue}); err != nil || res.Changed {
		t.Errorf("switch to the live colour = %+v, %v; want no change", res, err)
	}

	// Refusals change nothing: green scaled to 0, and a colour that does not exist.
	before, err := e.kube.CoreV1().Services(ns).Get(ctx, gw, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale(t, e, ns, gateway.DeploymentName(gw, green), 0)
	_, err = gateway.Switch(ctx, e.kube, gateway.SwitchOptions{Name: gw, Namespace: ns, To: green, Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "scaled to 0 replicas") {
		t.Errorf("switch to a colour scaled to 0: err = %v, want a refusal naming the scale", err)
	} else {
		t.Logf("refused as expected: %v", err)
	}
	start := time.Now()
	_, err = gateway.Switch(ctx, e.kube, gateway.SwitchOptions{Name: gw, Namespace: ns, To: "1-99-0", Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), `no gateway colour for revision "1-99-0"`) || time.Since(start) > 10*time.Second {
		t.Errorf("switch to a missing colour: err = %v after %s, want an immediate refusal", err, time.Since(start))
	}
	after, err := e.kube.CoreV1().Services(ns).Get(ctx, gw, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("refused switches wrote the service: resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	scale(t, e, ns, gateway.DeploymentName(gw, green), 1)

	seen := stop()
	var revs []string
	for _, s := range seen {
		live, err := gateway.LiveRevision(s.Spec.Selector, gw)
		if err != nil || (live != blue && live != green) || len(s.Spec.Selector) != 2 {
			t.Errorf("at resourceVersion %s the selector %v does not name exactly one colour: %v", s.ResourceVersion, s.Spec.Selector, err)
		}
		revs = append(revs, live)
	}
	if want := []string{green, blue}; !slices.Equal(revs, want) {
		t.Errorf("watched selector revisions %v, want %v (one write per switch, none for refusals)", revs, want)
	}
	if _, err := gateway.WaitReady(ctx, e.kube, ns, gw, green, time.Minute); err != nil {
		t.Errorf("green did not recover after scaling back: %v", err)
	}
}

// assertSelects checks that the pods the Service selects now exist and all
// belong to colour rev.
func assertSelects(t *testing.T, e *env, ns, gw, rev string) {
	t.Helper()
	svc, err := e.kube.CoreV1().Services(ns).Get(t.Context(), gw, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 {
		t.Errorf("service %s selects no pods (selector %v)", gw, svc.Spec.Selector)
	}
	for _, p := range pods.Items {
		if p.Labels[istio.LabelRev] != rev || p.Labels["istio"] != gw {
			t.Errorf("service %s selects pod %s with labels %v, want only colour %s", gw, p.Name, p.Labels, rev)
		}
	}
}

// watchService records every version of the Service from resourceVersion
// on; stop ends the watch and returns what was seen.
func watchService(t *testing.T, e *env, ns, name, rv string) (<-chan struct{}, func() []*corev1.Service) {
	t.Helper()
	w, err := e.kube.CoreV1().Services(ns).Watch(t.Context(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + name, ResourceVersion: rv,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var mu sync.Mutex
	var seen []*corev1.Service
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			if !ok || ev.Type == watch.Error {
				// The stream can end with an error event when stopped; a
				// missed update would show in the revisions checked below.
				t.Logf("watch event %s: %v", ev.Type, ev.Object)
				continue
			}
			mu.Lock()
			seen = append(seen, svc)
			mu.Unlock()
		}
	}()
	return done, func() []*corev1.Service {
		// Let the last events arrive before stopping.
		time.Sleep(500 * time.Millisecond)
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

func scale(t *testing.T, e *env, ns, name string, n int32) {
	t.Helper()
	_, err := e.kube.AppsV1().Deployments(ns).UpdateScale(t.Context(), name,
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n}},
		metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("scale %s/%s to %d: %v", ns, name, n, err)
	}
}
