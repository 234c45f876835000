package check

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// webhookEntry is the part of one admission webhook the checks read.
type webhookEntry struct {
	name, failurePolicy   string
	timeout               int64
	hasTimeout            bool
	svcNamespace, svcName string
	url                   string
}

// isWebhookConfig reports whether u is a mutating or validating webhook configuration.
func isWebhookConfig(u *unstructured.Unstructured) bool {
	return group(u) == "admissionregistration.k8s.io" &&
		(u.GetKind() == "MutatingWebhookConfiguration" || u.GetKind() == "ValidatingWebhookConfiguration")
}

// webhooks reads the webhooks of a webhook configuration.
func webhooks(u *unstructured.Unstructured) []webhookEntry {
	raw, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
	out := make([]webhookEntry, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		w := webhookEntry{}
		w.name, _, _ = nestedStr(m, "name")
		w.failurePolicy, _, _ = nestedStr(m, "failurePolicy")
		if t, ok := m["timeoutSeconds"]; ok && t != nil {
			w.timeout, w.hasTimeout = toInt(t), true
		}
		w.svcName, _, _ = nestedStr(m, "clientConfig", "service", "name")
		w.svcNamespace, _, _ = nestedStr(m, "clientConfig", "service", "namespace")
		w.url, _, _ = nestedStr(m, "clientConfig", "url")
		out = append(out, w)
	}
	return out
}
