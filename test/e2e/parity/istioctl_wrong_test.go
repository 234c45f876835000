package parity

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
)

// TestWhereIstioctlIsWrong pins the two places where istioctl misreads a
// cluster and meshroll must not follow it:
//   - `istioctl tag list` counts only namespaces labelled istio.io/rev=<tag>,
//     yet istio-injection=enabled namespaces are injected through the default
//     tag too (its namespace.sidecar-injector.istio.io webhook);
//   - `istioctl x injector list` matches a namespace against any injector
//     webhook's namespaceSelector, so every pod of an unlabelled namespace
//     (which nothing injects) is marked NEEDS RESTART.
//
// Each istioctl mistake is asserted too: if a newer istioctl fixes it, this
// test says so and the pin can go.
func TestWhereIstioctlIsWrong(t *testing.T) {
	e := newEnv(t)
	releases := sandbox.IstioctlReleases()
	ctl := builtIstioctl(t, releases[len(releases)-1])
	rev := e.install(t, ctl.version)
	e.setTag(t, istio.DefaultRevision, rev)
	const legacy, plain = "legacy-enabled", "plain"
	e.namespace(t, legacy, map[string]string{istio.LabelInjection: "enabled"})
	e.namespace(t, plain, nil)
	e.deployment(t, plain, "web")

	theirs, ours := tagLists(t, ctl)
	if !slices.Contains(ours[istio.DefaultRevision].Namespaces, legacy) {
		t.Errorf("meshroll tag list: default tag's namespaces %v lack %s (labelled %s=enabled, injected through the default tag)",
			ours[istio.DefaultRevision].Namespaces, legacy, istio.LabelInjection)
	}
	if slices.Contains(theirs[istio.DefaultRevision].Namespaces, legacy) {
		t.Errorf("istioctl %s tag list now counts %s under the default tag: the known istioctl mistake is fixed, drop this pin", ctl.version, legacy)
	}

	out := ctl.run(t, "x", "injector", "list")
	var plainLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, plain+" ") {
			plainLine = l
		}
	}
	if !strings.Contains(plainLine, "NEEDS RESTART") {
		t.Errorf("istioctl %s x injector list no longer marks unlabelled namespace %s for restart (line %q): the known istioctl mistake is fixed, drop this pin\n%s",
			ctl.version, plain, plainLine, out)
	}

	var status struct {
		Snapshot struct {
			Workloads []struct {
				Kind, Namespace, Name string
				Proxies               []struct{ Revision, Expected string }
			}
		}
	}
	if err := json.Unmarshal([]byte(meshroll(t, "status", "--workloads", "-o", "json")), &status); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range status.Snapshot.Workloads {
		if w.Namespace != plain {
			continue
		}
		found = true
		for _, p := range w.Proxies {
			if p.Revision != "" || p.Expected != "" {
				t.Errorf("meshroll status: %s %s/%s runs revision %q, expects %q; nothing injects an unlabelled namespace", w.Kind, w.Namespace, w.Name, p.Revision, p.Expected)
			}
		}
	}
	if !found {
		t.Errorf("meshroll status --workloads lists no workload in %s", plain)
	}
	var check struct {
		Findings []struct{ Code, Object, Message string }
	}
	if err := json.Unmarshal([]byte(meshrollAnyExit(t, "check", "-o", "json")), &check); err != nil {
		t.Fatal(err)
	}
	for _, f := range check.Findings {
		if strings.Contains(f.Object, "/"+plain+"/") {
			t.Errorf("meshroll check: %s on %s (%s); nothing injects an unlabelled namespace, nothing needs a restart", f.Code, f.Object, f.Message)
		}
	}
}

// namespace creates a namespace with labels (or leaves an existing one).
func (e *env) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// deployment creates a one-replica Deployment and waits until its pod is
// ready.
func (e *env) deployment(t *testing.T, ns, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
	_, err := e.kube.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := e.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == 1, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s not ready: %v", ns, name, err)
	}
}
