package check

import "fmt"

// webhookTimeout reports webhooks that fail closed (failurePolicy Fail, the
// v1 default) without a short timeout: while the backend is down or slow,
// every matching API request waits the full timeout and then fails, which
// during a control-plane upgrade can stop all pod creation in the cluster.
type webhookTimeout struct{}

// Name implements Checker.
func (webhookTimeout) Name() string { return "webhook-timeout" }

// Code implements Checker.
func (webhookTimeout) Code() string { return "MV012" }

// maxFailClosedTimeout is the longest timeout, in seconds, we accept on a
// fail-closed webhook: the API server's own default is 10.
const maxFailClosedTimeout = 10

// Run implements Checker.
func (c webhookTimeout) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		if !isWebhookConfig(u) {
			continue
		}
		for _, w := range webhooks(u) {
			if w.failurePolicy != "" && w.failurePolicy != "Fail" {
				continue
			}
			switch {
			case !w.hasTimeout:
				out = append(out, finding(c, Warning, ref(u),
					fmt.Sprintf("webhook %q fails closed with no timeoutSeconds (defaults to 10s)", w.name),
					"set timeoutSeconds explicitly (e.g. 5) so the blast radius of a slow backend is known"))
			case w.timeout > maxFailClosedTimeout:
				out = append(out, finding(c, Warning, ref(u),
					fmt.Sprintf("webhook %q fails closed with timeoutSeconds %d", w.name, w.timeout),
					fmt.Sprintf("lower timeoutSeconds to at most %d, or use failurePolicy Ignore", maxFailClosedTimeout)))
			}
		}
	}
	return out
}
