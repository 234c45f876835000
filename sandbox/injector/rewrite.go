package injector

import (
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

// AnnotationService records, on a webhook configuration rewritten for the
// sandbox, the Service its webhooks originally named
// ("namespace/name:port/path"; comma-separated when they differ), so meshroll's
// checks still know which istiod Service the webhook was meant to reach.
const AnnotationService = "sandbox.meshroll.io/service"

// Paths the injector serves; Rewrite points webhooks at them.
const (
	// PathInjectPrefix is followed by the revision whose injector answers.
	PathInjectPrefix = "/inject/rev/"
	// PathValidate accepts everything, standing in for istiod's validator.
	PathValidate = "/validate"
	// PathHealthz answers 200 while the injector serves.
	PathHealthz = "/healthz"
)

const admissionGroup = "admissionregistration.k8s.io"

// Rewrite points the webhooks of an Istio MutatingWebhookConfiguration or
// ValidatingWebhookConfiguration at the sandbox injector instead of the istiod
// Service they name, which the sandbox cannot reach. Only clientConfig changes
// (service → url, caBundle), plus the AnnotationService record; selectors,
// failurePolicy and everything else stay as rendered, so the real API server
// still decides which pods are sent for injection. Mutating webhooks go to
// PathInjectPrefix + the object's istio.io/rev label ("default" without one),
// validating ones to PathValidate. It reports whether obj changed; objects of
// other kinds, and webhooks that already use a URL, are left alone.
func Rewrite(obj *unstructured.Unstructured, ep Endpoint) (bool, error) {
	gvk := obj.GroupVersionKind()
	if gvk.Group != admissionGroup {
		return false, nil
	}
	var path string
	switch gvk.Kind {
	case "MutatingWebhookConfiguration":
		rev := obj.GetLabels()[istio.LabelRev]
		if rev == "" {
			rev = istio.DefaultRevision
		}
		path = PathInjectPrefix + url.PathEscape(rev)
	case "ValidatingWebhookConfiguration":
		path = PathValidate
	default:
		return false, nil
	}
	if ep.URL == "" {
		return false, fmt.Errorf("failed to rewrite webhooks of %q: endpoint has no URL", obj.GetName())
	}
	target := strings.TrimSuffix(ep.URL, "/") + path

	hooks, found, err := unstructured.NestedSlice(obj.Object, "webhooks")
	if err != nil {
		return false, fmt.Errorf("failed to read webhooks of %q: %w", obj.GetName(), err)
	}
	if !found {
		return false, nil
	}
	var services []string
	for i, h := range hooks {
		hook, ok := h.(map[string]any)
		if !ok {
			return false, fmt.Errorf("failed to read webhook %d of %q: not an object", i, obj.GetName())
		}
		svc, found, err := unstructured.NestedMap(hook, "clientConfig", "service")
		if err != nil {
			return false, fmt.Errorf("failed to read clientConfig.service of webhook %d of %q: %w", i, obj.GetName(), err)
		}
		if !found {
			continue
		}
		services = appendUnique(services, serviceRef(svc))
		cc, _, _ := unstructured.NestedMap(hook, "clientConfig")
		delete(cc, "service")
		cc["url"] = target
		cc["caBundle"] = encodeCABundle(ep.CABundle)
		hook["clientConfig"] = cc
		hooks[i] = hook
	}
	if len(services) == 0 {
		return false, nil
	}
	if err := unstructured.SetNestedSlice(obj.Object, hooks, "webhooks"); err != nil {
		return false, fmt.Errorf("failed to write webhooks of %q: %w", obj.GetName(), err)
	}
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationService] = strings.Join(services, ",")
	obj.SetAnnotations(ann)
	return true, nil
}

// serviceRef spells a ServiceReference as namespace/name:port/path, with the
// API's default port (443) when none is set.
func serviceRef(svc map[string]any) string {
	ns, _, _ := unstructured.NestedString(svc, "namespace")
	name, _, _ := unstructured.NestedString(svc, "name")
	path, _, _ := unstructured.NestedString(svc, "path")
	port := int64(443)
	switch p := svc["port"].(type) {
	case int64:
		port = p
	case float64:
		port = int64(p)
	case int:
		port = int64(p)
	case int32:
		port = int64(p)
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return fmt.Sprintf("%s/%s:%d%s", ns, name, port, path)
}

func appendUnique(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}
