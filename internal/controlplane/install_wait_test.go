package controlplane

import (
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// TestReinstallLeavesIstiodsValidatorAlone is the second-install defect
// real istiod showed (TestRevisionLifecycle): the chart renders the
// validator with caBundle "" and failurePolicy Ignore, istiod then patches in
// its CA and switches to Fail, and re-applying the chart took both back
// (fail-open and unverifiable until istiod patched it again).
func TestReinstallLeavesIstiodsValidatorAlone(t *testing.T) {
	rendered := func() *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
			"metadata": map[string]any{"name": "istio-validator-1-24-2-istio-system"},
			"webhooks": []any{map[string]any{
				"name": "rev.validation.istio.io", "failurePolicy": "Ignore",
				"clientConfig": map[string]any{"caBundle": "", "service": map[string]any{"name": "istiod-1-24-2", "namespace": "istio-system"}},
			}},
		}}
	}
	hook := func(o *unstructured.Unstructured) map[string]any {
		hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		return hooks[0].(map[string]any)
	}

	first := rendered()
	if err := leaveToIstiod(t.Context(), fake.NewClientset(), []*unstructured.Unstructured{first}); err != nil {
		t.Fatal(err)
	}
	if _, ok := hook(first)["clientConfig"].(map[string]any)["caBundle"]; ok {
		t.Errorf("first install applies the chart's empty caBundle: %v", hook(first))
	}
	if hook(first)["failurePolicy"] != "Ignore" {
		t.Errorf("first install: failurePolicy = %v, want the chart's Ignore (istiod switches it once it serves)", hook(first)["failurePolicy"])
	}

	fail := admissionv1.Fail
	live := &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-validator-1-24-2-istio-system"},
		Webhooks:   []admissionv1.ValidatingWebhook{{Name: "rev.validation.istio.io", FailurePolicy: &fail}},
	}
	again := rendered()
	if err := leaveToIstiod(t.Context(), fake.NewClientset(live), []*unstructured.Unstructured{again}); err != nil {
		t.Fatal(err)
	}
	if fp, ok := hook(again)["failurePolicy"]; ok {
		t.Errorf("reinstall claims failurePolicy %v over istiod's Fail", fp)
	}
	if svc := hook(again)["clientConfig"].(map[string]any)["service"]; svc == nil {
		t.Errorf("the Service reference was dropped: %v", hook(again))
	}
}

// TestWaitValidatorsWaitsForIstiodsSwitch is the race real istiod showed in
// TestRevisionLifecycle/second_install_changes_nothing: the first install
// returned while the validator was still as the chart rendered it, istiod
// switched it to Fail moments later, and a second install that had read
// Ignore wrote it back.
func TestWaitValidatorsWaitsForIstiodsSwitch(t *testing.T) {
	fail, ignore := admissionv1.Fail, admissionv1.Ignore
	vwc := func(ca string, p *admissionv1.FailurePolicyType) *admissionv1.ValidatingWebhookConfiguration {
		return &admissionv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-validator-1-24-2-istio-system"},
			Webhooks: []admissionv1.ValidatingWebhook{
				{Name: "rev.validation.istio.io", FailurePolicy: p, ClientConfig: admissionv1.WebhookClientConfig{CABundle: []byte(ca)}},
			},
		}
	}
	rendered := &unstructured.Unstructured{}
	rendered.SetKind("ValidatingWebhookConfiguration")
	rendered.SetName("istio-validator-1-24-2-istio-system")
	for _, tc := range []struct {
		name    string
		live    *admissionv1.ValidatingWebhookConfiguration
		wantErr string
	}{
		{name: "missing", wantErr: "not found"},
		{name: "as the chart rendered it", live: vwc("", &ignore), wantErr: "has no caBundle"},
		{name: "CA patched, still fail-open", live: vwc("ca", &ignore), wantErr: "still failurePolicy Ignore"},
		{name: "taken over by istiod", live: vwc("ca", &fail)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := fake.NewClientset()
			if tc.live != nil {
				if _, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(t.Context(), tc.live, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			err := waitValidators(t.Context(), kc, []*unstructured.Unstructured{rendered}, 300*time.Millisecond)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v, want none", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
