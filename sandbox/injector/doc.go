// Package injector stands in for istiod's sidecar injector inside the
// sandbox. No real istiod runs there, yet meshroll must be exercised against
// Istio's real rendered MutatingWebhookConfigurations, with the real API
// server deciding (through Istio's own namespace and object selectors) which
// pods get injected. Webhooks that name a Service cannot be reached in the
// sandbox (there is no kube-proxy), so meshroll rewrites only their
// clientConfig to a loopback URL of this injector (see Rewrite), and this
// injector answers like istiod would, closely enough for meshroll's checks:
// an istio-proxy container with the image the revision's injector ConfigMap
// names, and Istio's status annotation and labels.
package injector
