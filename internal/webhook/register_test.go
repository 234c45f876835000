package webhook

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestConfiguration(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\n")
	port := int32(443)
	path := PathMutate
	url := "https://127.0.0.1:9443/mutate"
	tests := []struct {
		name    string
		reg     Registration
		want    admissionregistrationv1.WebhookClientConfig
		wantErr bool
	}{
		{name: "url", reg: Registration{URL: url, CABundle: ca},
			want: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca}},
		{name: "service with defaults", reg: Registration{Service: &ServiceRef{Namespace: "meshroll-system", Name: "meshroll-webhook"}, CABundle: ca},
			want: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "meshroll-system", Name: "meshroll-webhook", Path: &path, Port: &port}, CABundle: ca}},
		{name: "neither", reg: Registration{CABundle: ca}, wantErr: true},
		{name: "both", reg: Registration{URL: url, Service: &ServiceRef{Namespace: "a", Name: "b"}, CABundle: ca}, wantErr: true},
		{name: "service without name", reg: Registration{Service: &ServiceRef{Namespace: "a"}, CABundle: ca}, wantErr: true},
		{name: "no CA", reg: Registration{URL: url}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ac, err := Configuration(tt.reg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Configuration() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ac)
			if err != nil {
				t.Fatal(err)
			}
			var cfg admissionregistrationv1.MutatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Name != ConfigName || len(cfg.Webhooks) != 1 {
				t.Fatalf("name %q with %d webhooks", cfg.Name, len(cfg.Webhooks))
			}
			checkWebhook(t, cfg.Webhooks[0])
			if diff := cmp.Diff(tt.want, cfg.Webhooks[0].ClientConfig); diff != "" {
				t.Errorf("clientConfig (-want +got):\n%s", diff)
			}
		})
	}
}

// checkWebhook asserts the fail-open, selection-bound shape every
// registration must have, whatever the client config.
func checkWebhook(t *testing.T, w admissionregistrationv1.MutatingWebhook) {
	t.Helper()
	ignore, equivalent, none, never := admissionregistrationv1.Ignore, admissionregistrationv1.Equivalent,
		admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.NeverReinvocationPolicy
	namespaced := admissionregistrationv1.NamespacedScope
	timeout := TimeoutSeconds
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	want := admissionregistrationv1.MutatingWebhook{
		Name:         WebhookName,
		ClientConfig: w.ClientConfig,
		Rules: []admissionregistrationv1.RuleWithOperations{
			{Operations: ops, Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"},
				Resources: []string{"deployments", "statefulsets", "daemonsets"}, Scope: &namespaced}},
			{Operations: ops, Rule: admissionregistrationv1.Rule{APIGroups: []string{"batch"}, APIVersions: []string{"v1"},
				Resources: []string{"cronjobs"}, Scope: &namespaced}},
		},
		FailurePolicy: &ignore,
		MatchPolicy:   &equivalent,
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
			Values: []string{"kube-system", "kube-public", "kube-node-lease"}}}},
		ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: LabelUpgrade, Operator: metav1.LabelSelectorOpExists}}},
		SideEffects:             &none,
		TimeoutSeconds:          &timeout,
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      &never,
	}
	if diff := cmp.Diff(want, w); diff != "" {
		t.Errorf("webhook (-want +got):\n%s", diff)
	}
}
