package check

import "testing"

func TestWebhookService(t *testing.T) {
	runCases(t, webhookService{}, []checkCase{
		{name: "service in set", fixture: docs(webhookFixture("failurePolicy: Fail", "a", "hook"), serviceFixture("hook", "a", "hook", "[]")), want: none},
		{name: "well-known istiod", fixture: webhookFixture("failurePolicy: Fail", "istio-system", "istiod-1-22-0"), want: none},
		{name: "missing service", fixture: webhookFixture("failurePolicy: Fail", "a", "hook"), want: []Severity{Error}},
		{name: "other revision than the set renders", fixture: docs(webhookFixture("failurePolicy: Fail", "istio-system", "istiod-1-22-0"), serviceFixture("istiod-1-23-2", "istio-system", "istiod", "[]")), want: []Severity{Warning}},
		{name: "url webhook", fixture: "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: v}\nwebhooks:\n- name: v.example.com\n  clientConfig: {url: 'https://127.0.0.1:9443/v'}\n", want: none},
		{name: "no backend", fixture: "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: v}\nwebhooks:\n- name: v.example.com\n  clientConfig: {}\n", want: []Severity{Error}},
	})
}
