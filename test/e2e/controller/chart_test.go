package controller

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// Edge of the demo mesh the upgrade must carry along: a blue/green gateway
// and a revision tag, both on 1-23-2 before the upgrade.
const (
	gatewayNS   = "ctl-gw"
	gatewayName = "edge"
	tagName     = "stable"
)

// chartSA is the identity the chart gives the controller.
var chartSA = "system:serviceaccount:" + charts.DefaultNamespace + ":" + charts.DefaultRelease

// installChart installs the meshroll chart with the Helm SDK, as `meshroll
// install-controller` does. The chart's Service-based webhook registration
// is off: the sandbox has no kube-proxy, so the controllers register the
// webhook by URL on 127.0.0.1 themselves (--webhook-url); the certificate
// Secret stays in the release namespace, where the chart's Role grants it.
func installChart(t testing.TB) {
	t.Helper()
	kc := sandboxtest.Kubeconfig(t)
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig = &kc
	start := time.Now()
	rel, err := charts.Install(t.Context(), getter, charts.InstallOptions{Values: map[string]any{"webhook": map[string]any{"enabled": false}}})
	if err != nil {
		t.Fatalf("helm install of the meshroll chart: %v", err)
	}
	t.Logf("helm install %s/%s revision %d in %s", rel.Namespace, rel.Name, rel.Version, time.Since(start).Round(time.Millisecond))
}

// admin runs a meshroll CLI command in-process as the sandbox's admin: the
// mesh's owner setting up what exists before the upgrade.
func admin(t testing.TB, args ...string) {
	t.Helper()
	var out bytes.Buffer
	args = append(args, "--kubeconfig", sandboxtest.Kubeconfig(t))
	if code := cli.Main(context.Background(), args, &out, &out); code != 0 {
		t.Fatalf("meshroll %v: exit %d\n%s", args, code, out.String())
	}
}

// seedEdge installs the gateway (blue/green, exposed by a meshroll-owned
// Service) and points the tag at 1-23-2.
func (e *env) seedEdge(t testing.TB) {
	t.Helper()
	admin(t, "gateway", "install", "--name", gatewayName, "--namespace", gatewayNS, "--revision", fromRev)
	admin(t, "gateway", "expose", "--name", gatewayName, "--namespace", gatewayNS)
	admin(t, "tag", "set", tagName, "--revision", fromRev)
	if got := e.gatewayLive(t); got != fromRev {
		t.Fatalf("gateway %s/%s serves %q before the upgrade, want %s", gatewayNS, gatewayName, got, fromRev)
	}
}

func (e *env) gatewayLive(t testing.TB) string {
	t.Helper()
	svc, err := e.kube.CoreV1().Services(gatewayNS).Get(t.Context(), gatewayName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector[istio.LabelRev]
}

// checkEdge: the gateway serves 1-24-2, the tag points at it, and 1-23-2's
// istiod is pruned.
func (e *env) checkEdge(t testing.TB) {
	t.Helper()
	if got := e.gatewayLive(t); got != toRev {
		t.Errorf("gateway %s/%s serves %q after the upgrade, want %s (flipped)", gatewayNS, gatewayName, got, toRev)
	}
	tag, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), "istio-revision-tag-"+tagName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tag.Labels[istio.LabelRev]; got != toRev {
		t.Errorf("tag %s points at %q after the upgrade, want %s", tagName, got, toRev)
	}
	if _, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+fromRev, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("istiod-%s after spec.prune: %v, want it removed", fromRev, err)
	}
}

// redeployAssigned plays a workload owner re-applying the manifest of a
// workload the controller already moved by pod label, with the old revision
// still in it (server-side dry run: the API server calls the admission
// webhooks, nothing is stored). The controller's assignment webhook must
// stamp the target revision back; retried for up to 30 s because the URL's
// process may be between a kill and its replacement.
func (e *env) redeployAssigned(t testing.TB, w v1alpha1.WorkloadStatus) error {
	var got string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		d, err := e.kube.AppsV1().Deployments(w.Namespace).Get(t.Context(), w.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Labels[istio.LabelRev] = fromRev
		out, err := e.kube.AppsV1().Deployments(w.Namespace).Update(t.Context(), d, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return fmt.Errorf("dry-run redeploy of %s/%s: %w", w.Namespace, w.Name, err)
		}
		if got = out.Spec.Template.Labels[istio.LabelRev]; got == toRev {
			t.Logf("webhook: a redeploy of %s/%s naming %s was stamped %s", w.Namespace, w.Name, fromRev, got)
			return nil
		}
	}
	return fmt.Errorf("a redeploy of %s/%s naming %s kept %q for 30s: the assignment webhook did not stamp %s", w.Namespace, w.Name, fromRev, got, toRev)
}

// movedByPod is a Deployment the run moved by pod label, if any yet.
func movedByPod(mu *v1alpha1.MeshUpgrade) (v1alpha1.WorkloadStatus, bool) {
	for _, w := range mu.Status.Workloads {
		if w.Mechanism == v1alpha1.MechanismPod && w.Kind == "Deployment" && w.Outcome == v1alpha1.OutcomeSucceeded {
			return w, true
		}
	}
	return v1alpha1.WorkloadStatus{}, false
}

// applyFile writes mu as the YAML file a user commits to Git and applies it
// as `kubectl apply --server-side -f` does (one server-side apply of the
// file's object, field manager kubectl): the only thing that starts the
// upgrade.
func (e *env) applyFile(t testing.TB, mu *v1alpha1.MeshUpgrade) {
	t.Helper()
	b, err := yaml.Marshal(mu)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "meshupgrade.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
		t.Fatalf("failed to read %s: %v", file, err)
	}
	unstructured.RemoveNestedField(obj.Object, "status")
	unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
	if _, err := e.dyn.Resource(v1alpha1.GroupVersionResource).Apply(t.Context(), obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatalf("apply %s: %v", file, err)
	}
}
