package controlplane

import (
	"context"
	"fmt"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// waitInjector blocks until the revision's injector webhook exists and every
// one of its webhooks carries a caBundle: only then can namespaces be pointed
// at the revision. Istio's charts render the bundle empty and istiod patches
// in its own CA once it runs; until then the API server cannot verify istiod
// and, the injector failing closed, would refuse every pod of an injected
// namespace.
func waitInjector(ctx context.Context, kc kubernetes.Interface, rev string, timeout time.Duration) error {
	name := InjectorName(rev)
	last := "not found"
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		mwc, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, h := range mwc.Webhooks {
			if len(h.ClientConfig.CABundle) == 0 {
				last = fmt.Sprintf("webhook %s has no caBundle yet (istiod patches it in)", h.Name)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for injector webhook %q within %s (last seen: %s): %w", name, timeout, last, err)
	}
	return nil
}

// waitValidators blocks until istiod has taken over every validating webhook
// the revision's charts rendered: its CA patched in and failurePolicy
// switched to Fail, which istiod does only after it has seen the API server
// call it and refuse invalid config. Until then the revision's config
// validation is fail-open, and istiod is still about to rewrite the webhook —
// an install returning earlier would race that rewrite (a second install
// reading Ignore would write it back).
func waitValidators(ctx context.Context, kc kubernetes.Interface, objs []*unstructured.Unstructured, timeout time.Duration) error {
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		name := o.GetName()
		last := "not found"
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			vwc, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = validatorPending(vwc)
			return last == "", nil
		})
		if err != nil {
			return fmt.Errorf("failed to wait for istiod to take over validating webhook %q within %s (last seen: %s): %w", name, timeout, last, err)
		}
	}
	return nil
}

// validatorPending says what istiod has yet to do to a validator, or "".
func validatorPending(vwc *admissionv1.ValidatingWebhookConfiguration) string {
	for _, h := range vwc.Webhooks {
		if len(h.ClientConfig.CABundle) == 0 {
			return fmt.Sprintf("webhook %s has no caBundle yet (istiod patches it in)", h.Name)
		}
		if h.FailurePolicy != nil && *h.FailurePolicy != admissionv1.Fail {
			return fmt.Sprintf("webhook %s is still failurePolicy %s (istiod switches it to Fail once it refuses invalid config)", h.Name, *h.FailurePolicy)
		}
	}
	return ""
}
