package check

import (
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/istio"
)

// webhookService reports webhooks whose backend Service is neither in the
// manifest set nor a well-known Istio control-plane Service: a typo in a
// revision name there makes every pod creation fail (injector) or every
// Istio config change fail (validator).
type webhookService struct{}

// Name implements Checker.
func (webhookService) Name() string { return "webhook-service" }

// Code implements Checker.
func (webhookService) Code() string { return "MV013" }

// wellKnownWebhookService reports Services that exist in a cluster with Istio
// even when they are not in this manifest set: istiod of some revision in the
// Istio system namespace, and the API server.
func wellKnownWebhookService(ns, name string) bool {
	if ns == "default" && name == "kubernetes" {
		return true
	}
	return ns == istio.SystemNamespace && (name == "istiod" || strings.HasPrefix(name, "istiod-"))
}

// Run implements Checker.
func (c webhookService) Run(in *Input) []Finding {
	services := map[string]bool{}
	revisioned := false
	for _, u := range in.Objects {
		if is(u, "", "Service") {
			services[u.GetNamespace()+"/"+u.GetName()] = true
			if strings.HasPrefix(u.GetName(), "istiod") {
				revisioned = true
			}
		}
	}
	var out []Finding
	for _, u := range in.Objects {
		if !isWebhookConfig(u) {
			continue
		}
		for _, w := range webhooks(u) {
			if w.svcName == "" {
				if w.url == "" {
					out = append(out, finding(c, Error, ref(u), fmt.Sprintf("webhook %q has neither clientConfig.service nor clientConfig.url", w.name),
						"point clientConfig.service at the webhook's Service"))
				}
				continue
			}
			key := w.svcNamespace + "/" + w.svcName
			switch {
			case services[key]:
			case revisioned && wellKnownWebhookService(w.svcNamespace, w.svcName) && strings.HasPrefix(w.svcName, "istiod"):
				// The set renders an istiod Service: a webhook pointing at
				// another istiod is almost certainly a revision mix-up.
				out = append(out, finding(c, Warning, ref(u), fmt.Sprintf("webhook %q points at Service %s, which this set does not render", w.name, key),
					"check the revision in clientConfig.service.name matches the istiod Service in the set"))
			case wellKnownWebhookService(w.svcNamespace, w.svcName):
			default:
				out = append(out, finding(c, Error, ref(u), fmt.Sprintf("webhook %q points at Service %s, which is neither in the set nor well known", w.name, key),
					"render the Service with the webhook or fix clientConfig.service.name/namespace"))
			}
		}
	}
	return out
}
