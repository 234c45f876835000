package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// The mesh shapes of issue #14, each built the way a real cluster has it.
const (
	shapeRev     = "1-24-2"
	shapeImage   = "docker.io/istio/proxyv2:1.24.2"
	shapeOld     = "docker.io/istio/proxyv2:1.24.0" // what an earlier patch release injected
	shapePinned  = "registry.example.internal/istio/proxyv2:1.24.2-patched"
	nsOptOut     = "shape-optout"  // istio-injection=disabled + istio.io/rev: a deliberate opt-out
	nsMesh       = "shape-mesh"    // istio.io/rev=1-24-2: pinned, distroless, gateway
	nsAmbient    = "shape-ambient" // ambient and sidecar injection at once
	nsBare       = "shape-bare"    // no label at all
	nsStale      = "shape-stale"   // sidecars from an earlier patch release
	nsOptOutPods = "shape-podopt"  // pods opt out themselves but name another revision
)

// shapeAnswer is the answer key: every finding on a shape object, by object.
// Objects not listed must have no finding at all.
var shapeAnswer = map[string][]string{
	"Namespace/" + nsAmbient:                    {check.CodeNamespaceAmbientSidecar},
	"Namespace/" + nsBare:                       {check.CodeNamespaceNotInjected},
	"Deployment/" + nsBare + "/gw-nowhere":      {check.CodeProxyImageAuto},
	"Pod/" + nsBare + "/gw-pod":                 {check.CodeProxyImageAuto},
	"Deployment/" + nsBare + "/unattributed":    {check.CodeProxyRevisionUnknown},
	"Deployment/" + nsStale + "/old":            {check.CodeProxyStale},
	"Namespace/" + nsStale:                      {check.CodeNamespaceProxiesStale},
	"Deployment/" + nsOptOutPods + "/opted-out": {check.CodePodRevOverridden},
}

// TestMeshShapes builds each shape of #14 on the sandbox, compares `meshroll
// check -o json` with the answer key object by object, then runs every fix
// that is a command with the real kubectl and asserts it made things better:
// its finding goes away (or moves to its next step), nothing on that object
// gets worse, and no opt-out label disappears.
func TestMeshShapes(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	ctx := t.Context()
	if _, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: "1.24.2"}}); err != nil {
		t.Fatalf("install 1.24.2: %v", err)
	}
	e.buildShapes(t)

	findings := e.shapeFindings(t)
	got := map[string][]string{}
	for _, f := range findings {
		got[f.Object] = append(got[f.Object], f.Code)
	}
	for obj, codes := range got {
		slices.Sort(codes)
		want := slices.Sorted(slices.Values(shapeAnswer[obj]))
		if !slices.Equal(codes, want) {
			t.Errorf("%s: findings %v, want %v", obj, codes, want)
		}
	}
	for obj, want := range shapeAnswer {
		if _, ok := got[obj]; !ok {
			t.Errorf("%s: no finding, want %v", obj, want)
		}
	}
	if t.Failed() {
		for _, f := range findings {
			t.Logf("finding: %s %s %s: %s | fix: %s", f.Severity, f.Code, f.Object, f.Message, f.Fix)
		}
		t.FailNow()
	}

	t.Run("fixes make things better", func(t *testing.T) { e.applyFixes(t) })
}

func (e *env) buildShapes(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	nss := map[string]map[string]string{
		nsOptOut:     {istio.LabelInjection: "disabled", istio.LabelRev: shapeRev},
		nsMesh:       {istio.LabelRev: shapeRev},
		nsAmbient:    {istio.LabelRev: shapeRev, istio.LabelDataplaneMode: istio.DataplaneModeAmbient},
		nsBare:       nil,
		nsStale:      {istio.LabelRev: shapeRev},
		nsOptOutPods: {istio.LabelRev: shapeRev},
	}
	for name, labels := range nss {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := e.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		waitServiceAccount(t, e, name)
	}
	// A ProxyConfig that makes one workload distroless, as platform teams do.
	pc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1beta1", "kind": "ProxyConfig",
		"metadata": map[string]any{"name": "distroless-web", "namespace": nsMesh},
		"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "distroless-pc"}}, "image": map[string]any{"imageType": "distroless"}},
	}}
	gvr := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "proxyconfigs"}
	if _, err := e.dyn.Resource(gvr).Namespace(nsMesh).Create(ctx, pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	deploys := []*appsv1.Deployment{
		shapeDeploy(nsOptOut, "app", nil, nil),
		shapeDeploy(nsMesh, "plain", nil, nil),
		shapeDeploy(nsMesh, "pinned", nil, map[string]string{istio.AnnotationProxyImage: shapePinned}),
		shapeDeploy(nsMesh, "distroless-ann", nil, map[string]string{istio.AnnotationProxyConfig: "image:\n  imageType: distroless\n"}),
		shapeDeploy(nsMesh, "distroless-pc", nil, nil),
		gatewayDeploy(nsMesh, "ingress", map[string]string{istio.LabelSidecarInject: "true"}),
		gatewayDeploy(nsBare, "gw-nowhere", nil),
		shapeDeploy(nsBare, "plain", nil, nil),
		preInjected(shapeDeploy(nsBare, "unattributed", nil, nil), nil),
		preInjected(shapeDeploy(nsBare, "by-discovery", nil, nil), []corev1.EnvVar{{Name: "PROXY_CONFIG",
			Value: `{"discoveryAddress":"istiod-` + shapeRev + `.istio-system.svc:15012"}`}}),
		shapeDeploy(nsStale, "old", nil, nil),
		shapeDeploy(nsStale, "current", nil, nil),
		shapeDeploy(nsOptOutPods, "opted-out", map[string]string{istio.LabelSidecarInject: "false", istio.LabelRev: "1-23-2"}, nil),
	}
	for _, d := range deploys {
		if _, err := e.kube.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	gwPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gw-pod", Namespace: nsBare},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: istio.ProxyContainer, Image: istio.AutoImage}}}}
	if _, err := e.kube.CoreV1().Pods(nsBare).Create(ctx, gwPod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, d := range deploys {
		waitPods(t, e, d.Namespace, d.Name, 2)
	}
	// The distroless image of these pods' image type, pinned to the
	// test's own image name so the check's expectations are exact.
	setProxyImage(t, e, nsMesh, "distroless-ann", shapeImage+"-distroless")
	setProxyImage(t, e, nsMesh, "distroless-pc", shapeImage+"-distroless")
	// The stale shape: these sidecars were injected by an earlier patch
	// release of the same revision (the injector has moved on since).
	setProxyImage(t, e, nsStale, "old", shapeOld)
}

// setProxyImage rewrites the istio-proxy image of app's pods (a pod's
// container image is mutable), to leave them as an injector would have.
func setProxyImage(t *testing.T, e *env, ns, app, image string) {
	t.Helper()
	ctx := t.Context()
	pods, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for i, c := range p.Spec.Containers {
			if c.Name == istio.ProxyContainer && c.Image != image {
				patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/containers/%d/image","value":%q}]`, i, image)
				if _, err := e.kube.CoreV1().Pods(ns).Patch(ctx, p.Name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func shapeDeploy(ns, name string, podLabels, podAnnotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	maps.Copy(labels, podLabels)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.internal/app:1"}}},
			},
		},
	}
}

// gatewayDeploy is a gateway Deployment as Istio's gateway chart renders it:
// an istio-proxy container with image: auto that injection fills in.
func gatewayDeploy(ns, name string, podLabels map[string]string) *appsv1.Deployment {
	d := shapeDeploy(ns, name, podLabels, map[string]string{"inject.istio.io/templates": "gateway"})
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: istio.ProxyContainer, Image: istio.AutoImage}}
	return d
}

// preInjected is a template injected by hand (istioctl kube-inject of an old
// release that wrote no revision): a sidecar with only the env given.
func preInjected(d *appsv1.Deployment, env []corev1.EnvVar) *appsv1.Deployment {
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers,
		corev1.Container{Name: istio.ProxyContainer, Image: shapeImage, Args: []string{"proxy", "sidecar"}, Env: env})
	return d
}

func waitServiceAccount(t *testing.T, e *env, ns string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("default ServiceAccount in %s: %v", ns, err)
	}
}

// waitPods waits until app=name has exactly n pods, all Running, none terminating.
func waitPods(t *testing.T, e *env, ns, name string, n int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == n && len(pods.Items) == n, nil
	})
	if err != nil {
		t.Fatalf("pods of %s/%s: %v", ns, name, err)
	}
}

// shapeFindings runs `meshroll check -o json` and keeps the findings on
// shape objects.
func (e *env) shapeFindings(t *testing.T) []check.Finding {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), []string{"check", "-o", "json", "--kubeconfig", sandboxtest.Kubeconfig(t)}, &out, &errOut)
	if code > 2 {
		t.Fatalf("check exit %d: %s", code, errOut.String())
	}
	var view struct {
		Findings []check.Finding `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &view); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out.String())
	}
	if view.Findings == nil {
		t.Fatalf("check -o json printed findings: null, want a list:\n%s", out.String())
	}
	var mine []check.Finding
	for _, f := range view.Findings {
		if strings.Contains(f.Object, "/shape-") {
			mine = append(mine, f)
		}
	}
	return mine
}
