package controlplane

import (
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestWaitInjectorWaitsForIstiodsCA: the chart renders the injector's
// caBundle empty and istiod patches in its CA once it runs; an install that
// returned before that would let namespaces point at an injector the API
// server cannot verify (every pod refused, the injector failing closed).
func TestWaitInjectorWaitsForIstiodsCA(t *testing.T) {
	mwc := func(ca string) *admissionv1.MutatingWebhookConfiguration {
		return &admissionv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: InjectorName("1-24-2")},
			Webhooks: []admissionv1.MutatingWebhook{
				{Name: "rev.namespace.sidecar-injector.istio.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: []byte("ca")}},
				{Name: "rev.object.sidecar-injector.istio.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: []byte(ca)}},
			},
		}
	}
	for _, tc := range []struct {
		name    string
		objs    []*admissionv1.MutatingWebhookConfiguration
		wantErr string
	}{
		{name: "missing", wantErr: "not found"},
		{name: "as the chart rendered it", objs: []*admissionv1.MutatingWebhookConfiguration{mwc("")}, wantErr: "rev.object.sidecar-injector.istio.io has no caBundle"},
		{name: "patched by istiod", objs: []*admissionv1.MutatingWebhookConfiguration{mwc("ca")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := fake.NewClientset()
			for _, o := range tc.objs {
				if _, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), o, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			err := waitInjector(t.Context(), kc, "1-24-2", 300*time.Millisecond)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v, want none", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
