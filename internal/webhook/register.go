package webhook

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names of what Register applies.
const (
	// ConfigName is the MutatingWebhookConfiguration meshroll owns.
	ConfigName = "meshroll-revision-assignment"
	// WebhookName is its single webhook.
	WebhookName = "assignment.meshroll.io"
	// FieldManager owns everything meshroll applies, as elsewhere in meshroll.
	FieldManager = "meshroll"
	// TimeoutSeconds keeps a slow or hung webhook from stretching a deploy:
	// the API server gives up after 2 s and, failing open, admits the object.
	TimeoutSeconds int32 = 2
)

// excludedNamespaces never reach the webhook: the cluster's own namespaces are
// never part of an upgrade, and keeping them out means a webhook problem can
// never touch the control plane's workloads. The API server labels every
// namespace kubernetes.io/metadata.name=<name>, which lets the
// namespaceSelector exclude them by name.
func excludedNamespaces() []string {
	return []string{"kube-system", "kube-public", "kube-node-lease"}
}

// Registration says how the API server reaches the webhook. Exactly one of URL
// and Service is set.
type Registration struct {
	// URL is a direct https URL such as https://127.0.0.1:8443/mutate, for the
	// local sandbox where the webhook runs outside the cluster.
	URL string
	// Service is the in-cluster Service fronting the webhook.
	Service *ServiceRef
	// CABundle is the PEM CA the API server verifies the serving certificate
	// with (EnsureCert's caPEM).
	CABundle []byte
}

// ServiceRef names the Service in front of the webhook.
type ServiceRef struct {
	Namespace string
	Name      string
	// Path defaults to PathMutate.
	Path string
	// Port defaults to 443.
	Port int32
}

// Register applies the MutatingWebhookConfiguration ConfigName with server-side
// apply (field manager "meshroll", forced), so it converges from any previous
// state and repeated calls, e.g. after a certificate renewal, are cheap no-ops
// when nothing changed.
func Register(ctx context.Context, kube kubernetes.Interface, reg Registration) error {
	cfg, err := Configuration(reg)
	if err != nil {
		return err
	}
	_, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Apply(ctx, cfg,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("failed to apply mutatingwebhookconfiguration %q: %w", ConfigName, err)
	}
	return nil
}

// Unregister deletes the MutatingWebhookConfiguration; an absent one is fine,
// so tearing down twice or after a failed start is safe.
func Unregister(ctx context.Context, kube kubernetes.Interface) error {
	err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, ConfigName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete mutatingwebhookconfiguration %q: %w", ConfigName, err)
	}
	return nil
}

// Configuration builds the apply configuration Register applies for reg; the
// Helm chart renders the same webhook (charts/chart_test.go compares them).
func Configuration(reg Registration) (*admissionregistrationv1ac.MutatingWebhookConfigurationApplyConfiguration, error) {
	client := admissionregistrationv1ac.WebhookClientConfig().WithCABundle(reg.CABundle...)
	switch {
	case reg.URL != "" && reg.Service != nil:
		return nil, fmt.Errorf("failed to build webhook %q: both URL and Service are set", WebhookName)
	case reg.URL != "":
		client.WithURL(reg.URL)
	case reg.Service != nil:
		s := reg.Service
		if s.Namespace == "" || s.Name == "" {
			return nil, fmt.Errorf("failed to build webhook %q: service needs a namespace and a name", WebhookName)
		}
		path, port := s.Path, s.Port
		if path == "" {
			path = PathMutate
		}
		if port == 0 {
			port = 443
		}
		client.WithService(admissionregistrationv1ac.ServiceReference().
			WithNamespace(s.Namespace).WithName(s.Name).WithPath(path).WithPort(port))
	default:
		return nil, fmt.Errorf("failed to build webhook %q: neither URL nor Service is set", WebhookName)
	}
	if len(reg.CABundle) == 0 {
		return nil, fmt.Errorf("failed to build webhook %q: empty CA bundle", WebhookName)
	}

	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	hook := admissionregistrationv1ac.MutatingWebhook().
		WithName(WebhookName).
		WithClientConfig(client).
		WithRules(
			rule("apps", ops, "deployments", "statefulsets", "daemonsets"),
			rule("batch", ops, "cronjobs"),
		).
		WithFailurePolicy(admissionregistrationv1.Ignore).
		WithMatchPolicy(admissionregistrationv1.Equivalent).
		WithSideEffects(admissionregistrationv1.SideEffectClassNone).
		WithTimeoutSeconds(TimeoutSeconds).
		WithAdmissionReviewVersions("v1").
		WithReinvocationPolicy(admissionregistrationv1.NeverReinvocationPolicy).
		WithObjectSelector(metav1ac.LabelSelector().WithMatchExpressions(
			metav1ac.LabelSelectorRequirement().WithKey(LabelUpgrade).WithOperator(metav1.LabelSelectorOpExists))).
		WithNamespaceSelector(metav1ac.LabelSelector().WithMatchExpressions(
			metav1ac.LabelSelectorRequirement().WithKey(corev1.LabelMetadataName).
				WithOperator(metav1.LabelSelectorOpNotIn).WithValues(excludedNamespaces()...)))
	return admissionregistrationv1ac.MutatingWebhookConfiguration(ConfigName).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": FieldManager}).
		WithWebhooks(hook), nil
}

// rule matches the v1 resources of group for ops, in every namespace.
func rule(group string, ops []admissionregistrationv1.OperationType, resources ...string) *admissionregistrationv1ac.RuleWithOperationsApplyConfiguration {
	return admissionregistrationv1ac.RuleWithOperations().
		WithOperations(ops...).
		WithAPIGroups(group).
		WithAPIVersions("v1").
		WithResources(resources...).
		WithScope(admissionregistrationv1.NamespacedScope)
}
