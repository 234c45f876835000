package check

// webhookFixture builds a MutatingWebhookConfiguration with one webhook whose
// extra fields (failurePolicy, timeoutSeconds, …) are given as flow-map
// entries and whose backend is Service ns/svc.
func webhookFixture(extra, ns, svc string) string {
	return `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: injector}
webhooks:
- name: inject.example.com
  clientConfig:
    service: {name: ` + svc + `, namespace: ` + ns + `, path: /inject}
  admissionReviewVersions: [v1]
  sideEffects: None
  ` + extra + `
`
}
