package check

import "testing"

func TestWebhookTimeout(t *testing.T) {
	runCases(t, webhookTimeout{}, []checkCase{
		{name: "fail with short timeout", fixture: webhookFixture("failurePolicy: Fail\n  timeoutSeconds: 5", "a", "s"), want: none},
		{name: "ignore without timeout", fixture: webhookFixture("failurePolicy: Ignore", "a", "s"), want: none},
		{name: "fail without timeout", fixture: webhookFixture("failurePolicy: Fail", "a", "s"), want: []Severity{Warning}},
		{name: "default policy long timeout", fixture: webhookFixture("timeoutSeconds: 30", "a", "s"), want: []Severity{Warning}},
	})
}
