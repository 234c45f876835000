package gateway

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/internal/istio"
)

// TestRenderValues renders the real gateway chart with RenderValues and
// checks the contract blue/green relies on: pods carry istio=<gw>,
// meshroll.io/gateway=<gw> and the revision; the colour's own Service is
// ClusterIP; colours differ in their Deployment selector.
func TestRenderValues(t *testing.T) {
	if testing.Short() {
		t.Skip("renders Istio charts from the module cache")
	}
	for _, version := range []string{"1.23.2", "1.24.2"} {
		t.Run(version, func(t *testing.T) {
			rev := istio.RevisionName(version)
			objs, err := istio.Render(t.Context(), istio.RenderOptions{
				Version: version, Revision: rev, Components: []istio.Component{istio.Gateway},
				GatewayName: DeploymentName("ingress", rev), GatewayNamespace: "istio-ingress",
				Values: RenderValues("ingress", version),
			})
			if err != nil {
				t.Fatal(err)
			}
			var dep *appsv1.Deployment
			var svc *corev1.Service
			for _, o := range objs {
				switch o.GetKind() {
				case "Deployment":
					dep = &appsv1.Deployment{}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, dep); err != nil {
						t.Fatal(err)
					}
				case "Service":
					svc = &corev1.Service{}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, svc); err != nil {
						t.Fatal(err)
					}
				}
			}
			if dep == nil || svc == nil {
				t.Fatalf("render has no Deployment or Service: %d objects", len(objs))
			}
			if dep.Name != "ingress-"+rev {
				t.Errorf("deployment name %q, want ingress-%s", dep.Name, rev)
			}
			pod := dep.Spec.Template.Labels
			for k, v := range map[string]string{"istio": "ingress", LabelGateway: "ingress", istio.LabelRev: rev} {
				if pod[k] != v {
					t.Errorf("pod label %s=%q, want %q (labels %v)", k, pod[k], v, pod)
				}
			}
			if c, ok := ColourOf(dep, "ingress"); !ok || c.Revision != rev || c.Version != version {
				t.Errorf("ColourOf(rendered) = %+v, %v; want revision %s version %s", c, ok, rev, version)
			}
			if svc.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("colour service type %q, want ClusterIP", svc.Spec.Type)
			}
			if dep.Spec.Selector.MatchLabels["app"] != "ingress-"+rev {
				t.Errorf("deployment selector %v must tell colours apart", dep.Spec.Selector.MatchLabels)
			}
		})
	}
}
