package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// TestInstallReleases runs after TestSeededMesh (file order), which asserts a
// mesh with exactly one revision. It installs several Istio releases side by
// side from their real charts and checks that each revision's injector, reached through its
// real webhook selectors, injects its own proxy image.
func TestInstallReleases(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	for _, version := range []string{"1.24.2", "1.25.1", "1.26.1"} {
		rev := istio.RevisionName(version)
		start := time.Now()
		res, err := controlplane.Install(t.Context(), e.controlplane(), controlplane.InstallOptions{
			Render: istio.RenderOptions{Version: version, Revision: rev},
		})
		if err != nil {
			t.Fatalf("install %s: %v", version, err)
		}
		t.Logf("installed %s in %s (%s)", version, time.Since(start).Round(time.Millisecond), controlplane.Summarize(res.Changes))

		again, err := controlplane.Install(t.Context(), e.controlplane(), controlplane.InstallOptions{
			Render: istio.RenderOptions{Version: version, Revision: rev},
		})
		if err != nil {
			t.Fatalf("second install %s: %v", version, err)
		}
		for _, c := range again.Changes {
			if c.Action != controlplane.Unchanged {
				t.Errorf("second install of %s changed %s", version, c)
			}
		}

		ns := "install-" + rev
		_, err = e.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{istio.LabelRev: rev}}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
		}
		got, err := e.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod in %s: %v", ns, err)
		}
		want := fmt.Sprintf("docker.io/istio/proxyv2:%s", version)
		if img := proxyImageOf(got); img != want {
			t.Errorf("pod in namespace labelled %s=%s got proxy %q, want %q", istio.LabelRev, rev, img, want)
		}
	}
	revs, err := controlplane.ListRevisions(t.Context(), e.kube, istio.SystemNamespace)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, r := range revs {
		seen[r.Name] = r.Version.String()
	}
	for _, v := range []string{"1.24.2", "1.25.1", "1.26.1"} {
		if seen[istio.RevisionName(v)] != v {
			t.Errorf("installed revisions %v lack %s", seen, v)
		}
	}
}

func proxyImageOf(p *corev1.Pod) string {
	for _, c := range p.Spec.Containers {
		if c.Name == istio.ProxyContainer {
			return c.Image
		}
	}
	return ""
}
