package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

func TestAdoptInjectorClientConfig(t *testing.T) {
	url := "https://istiod.example:15017/inject"
	ifNeeded := admissionv1.IfNeededReinvocationPolicy
	injector := &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-1-24-2"},
		Webhooks: []admissionv1.MutatingWebhook{{
			Name:               "rev.namespace.sidecar-injector.istio.io",
			ClientConfig:       admissionv1.WebhookClientConfig{URL: &url, CABundle: []byte("ca")},
			ReinvocationPolicy: &ifNeeded,
		}},
	}
	svc := &admissionv1.ServiceReference{Namespace: "istio-system", Name: "istiod-1-24-2"}
	tag := &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: istio.TagWebhookPrefix + "prod"},
		Webhooks: []admissionv1.MutatingWebhook{
			{Name: "rev.namespace.sidecar-injector.istio.io", ClientConfig: admissionv1.WebhookClientConfig{Service: svc}},
			{Name: "rev.object.sidecar-injector.istio.io", ClientConfig: admissionv1.WebhookClientConfig{Service: svc}},
		},
	}
	if err := AdoptInjectorClientConfig(tag, injector); err != nil {
		t.Fatal(err)
	}
	for _, h := range tag.Webhooks {
		if h.ClientConfig.Service != nil || h.ClientConfig.URL == nil || *h.ClientConfig.URL != url || string(h.ClientConfig.CABundle) != "ca" {
			t.Errorf("webhook %s client config = %+v", h.Name, h.ClientConfig)
		}
		if h.ReinvocationPolicy == nil || *h.ReinvocationPolicy != ifNeeded {
			t.Errorf("webhook %s reinvocationPolicy = %v, want the injector's %s", h.Name, h.ReinvocationPolicy, ifNeeded)
		}
	}
	if err := AdoptInjectorClientConfig(tag, &admissionv1.MutatingWebhookConfiguration{}); err == nil {
		t.Error("no error for an injector without injection webhooks")
	}
}

// TestTagWebhookMetadata pins issue #16's defect 1 at the unit level: a
// tag's webhook takes the injector's labels and annotations as istioctl does
// and carries no installer label, so `istioctl uninstall --purge` spares it.
func TestTagWebhookMetadata(t *testing.T) {
	injector := &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{
			Name: "istio-sidecar-injector-1-24-2",
			Labels: map[string]string{
				"app": "sidecar-injector", istio.LabelRev: "1-24-2", "release": "istiod-1-24-2", "team": "mesh",
				istio.LabelOperatorComponent: "Pilot", "install.operator.istio.io/owning-resource": "unknown",
			},
			Annotations: map[string]string{
				"sidecar.istio.io/note": "from the install",
				lastAppliedAnnotation:   "{}",
				"example.com/note":      "kept",
			},
		},
		Webhooks: []admissionv1.MutatingWebhook{{Name: "rev.namespace.sidecar-injector.istio.io", ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Namespace: "istio-system", Name: "istiod-1-24-2"}}}},
	}
	rendered := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": "istio-revision-tag-prod", "labels": map[string]any{
			istio.LabelTag: "prod", istio.LabelRev: "1-24-2", "app": "sidecar-injector",
			istio.LabelOperatorComponent: "Pilot", "install.operator.istio.io/owning-resource": "unknown",
		}},
		"webhooks": []any{map[string]any{"name": "rev.namespace.sidecar-injector.istio.io", "sideEffects": "None",
			"admissionReviewVersions": []any{"v1"}, "clientConfig": map[string]any{"service": map[string]any{"name": "istiod-1-24-2", "namespace": "istio-system"}}}},
	}}
	out, err := tagWebhook(rendered, injector)
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{istio.LabelTag: "prod", istio.LabelRev: "1-24-2", "app": "sidecar-injector", "release": "istiod-1-24-2", "team": "mesh"}
	if diff := cmp.Diff(wantLabels, out.GetLabels()); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{"sidecar.istio.io/note": "from the install", "example.com/note": "kept"}
	if diff := cmp.Diff(wantAnn, out.GetAnnotations()); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

func TestKeepFailurePolicy(t *testing.T) {
	fail, ignore := admissionv1.Fail, admissionv1.Ignore
	vwc := func(fp *admissionv1.FailurePolicyType) *admissionv1.ValidatingWebhookConfiguration {
		return &admissionv1.ValidatingWebhookConfiguration{Webhooks: []admissionv1.ValidatingWebhook{{Name: "validation.istio.io", FailurePolicy: fp}}}
	}
	tests := []struct {
		name string
		live *admissionv1.FailurePolicyType
		want *admissionv1.FailurePolicyType
	}{
		// istiod set Fail: leave it unset, istiod's to manage (the default is Fail).
		{"istiod switched to Fail", &fail, nil},
		{"still Ignore", &ignore, &ignore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := vwc(&ignore)
			keepFailurePolicy(got, vwc(tt.live))
			if diff := cmp.Diff(tt.want, got.Webhooks[0].FailurePolicy); diff != "" {
				t.Errorf("failurePolicy (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderDefaultValidator pins issue #16's defect 2 at the unit level:
// the default validator skips config labelled istio.io/rev (the labelled
// revision's own validator judges it), whether rendered from the release's
// default chart or, where a chart source lacks it, from base's template.
func TestRenderDefaultValidator(t *testing.T) {
	moduleCharts, err := istio.ModuleSource{}.ChartsDir(context.Background(), "1.24.2")
	if err != nil {
		t.Fatal(err)
	}
	withoutDefault := t.TempDir()
	for _, c := range []string{"base", "istio-control", "gateway"} {
		if err := os.Symlink(filepath.Join(moduleCharts, c), filepath.Join(withoutDefault, c)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		source istio.ChartSource
	}{
		{"default chart", nil},
		{"base chart fallback", istio.DirSource{Dir: withoutDefault}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := renderDefaultValidator(context.Background(), istio.RenderOptions{Version: "1.24.2", Revision: "1-24-2", Namespace: istio.SystemNamespace, Source: tt.source})
			if err != nil {
				t.Fatal(err)
			}
			var vwc admissionv1.ValidatingWebhookConfiguration
			if err := fromUnstructured(obj, &vwc); err != nil {
				t.Fatal(err)
			}
			if vwc.Labels[istio.LabelRev] != "1-24-2" || vwc.Labels[istio.LabelTag] != istio.DefaultRevision {
				t.Errorf("labels = %v, want %s=1-24-2 and %s=default", vwc.Labels, istio.LabelRev, istio.LabelTag)
			}
			want := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: istio.LabelRev, Operator: metav1.LabelSelectorOpDoesNotExist}}}
			for _, h := range vwc.Webhooks {
				if diff := cmp.Diff(want, h.ObjectSelector); diff != "" {
					t.Errorf("webhook %s objectSelector (-want +got):\n%s", h.Name, diff)
				}
			}
		})
	}
}
