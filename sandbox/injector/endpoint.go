package injector

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Where a running injector publishes its Endpoint, so that meshroll, applying
// webhooks later from another process, knows it is in a sandbox and where to
// point them. kube-public is readable by everyone and exists on every cluster.
const (
	EndpointNamespace = "kube-public"
	EndpointName      = "meshroll-sandbox-injector"
	endpointKeyURL    = "url"
	endpointKeyCA     = "caBundle"
	fieldManager      = "meshroll"
)

// Endpoint is how the API server reaches a running injector: its base URL
// (https://127.0.0.1:port) and the PEM CA bundle that signs its serving
// certificate, i.e. what a rewritten webhook's clientConfig needs.
type Endpoint struct {
	URL      string
	CABundle []byte
}

// Publish records ep in the ConfigMap kube-public/meshroll-sandbox-injector
// (server-side apply), creating kube-public if the cluster lacks it.
func Publish(ctx context.Context, c kubernetes.Interface, ep Endpoint) error {
	cm := corev1ac.ConfigMap(EndpointName, EndpointNamespace).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": fieldManager}).
		WithData(map[string]string{endpointKeyURL: ep.URL, endpointKeyCA: string(ep.CABundle)})
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	_, err := c.CoreV1().ConfigMaps(EndpointNamespace).Apply(ctx, cm, opts)
	if apierrors.IsNotFound(err) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: EndpointNamespace}}
		if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create namespace %q: %w", EndpointNamespace, err)
		}
		_, err = c.CoreV1().ConfigMaps(EndpointNamespace).Apply(ctx, cm, opts)
	}
	if err != nil {
		return fmt.Errorf("failed to publish injector endpoint %q: %w", EndpointNamespace+"/"+EndpointName, err)
	}
	return nil
}

// LoadEndpoint reads what Publish recorded. found is false when there is no
// such ConfigMap, which is how meshroll tells a real cluster from a sandbox.
func LoadEndpoint(ctx context.Context, c kubernetes.Interface) (Endpoint, bool, error) {
	cm, err := c.CoreV1().ConfigMaps(EndpointNamespace).Get(ctx, EndpointName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Endpoint{}, false, nil
	}
	if err != nil {
		return Endpoint{}, false, fmt.Errorf("failed to get injector endpoint %q: %w", EndpointNamespace+"/"+EndpointName, err)
	}
	ep := Endpoint{URL: cm.Data[endpointKeyURL], CABundle: []byte(cm.Data[endpointKeyCA])}
	if ep.URL == "" || len(ep.CABundle) == 0 {
		return Endpoint{}, false, fmt.Errorf("failed to read injector endpoint %q: url or caBundle is empty", EndpointNamespace+"/"+EndpointName)
	}
	return ep, true, nil
}

// encodeCABundle spells a PEM bundle the way an unstructured object carries a
// []byte field (base64), so the API server decodes it back to PEM.
func encodeCABundle(pem []byte) string {
	return base64.StdEncoding.EncodeToString(pem)
}

// WaitEndpoint polls until an injector has published its endpoint, for
// callers that start one and must not install webhooks before it answers.
func WaitEndpoint(ctx context.Context, c kubernetes.Interface, timeout time.Duration) (Endpoint, error) {
	var ep Endpoint
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var found bool
		ep, found, last = LoadEndpoint(ctx, c)
		return found && last == nil, nil
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("failed to wait %s for the sandbox injector endpoint (last error: %v): %w", timeout, last, err)
	}
	return ep, nil
}

// Withdraw deletes what Publish recorded, so meshroll stops rewriting Istio's
// webhooks: real istiod answers them now (see RunReal). Nothing recorded is
// not an error.
func Withdraw(ctx context.Context, c kubernetes.Interface) error {
	err := c.CoreV1().ConfigMaps(EndpointNamespace).Delete(ctx, EndpointName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to withdraw injector endpoint %q: %w", EndpointNamespace+"/"+EndpointName, err)
	}
	return nil
}
