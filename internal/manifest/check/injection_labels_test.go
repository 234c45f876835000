package check

import "testing"

func TestInjectionLabels(t *testing.T) {
	runCases(t, injectionLabels{}, []checkCase{
		{name: "rev only", fixture: namespaceFixture("a", "istio.io/rev: 1-23-2"), want: none},
		{name: "legacy only", fixture: namespaceFixture("a", "istio-injection: enabled"), want: none},
		{name: "both", fixture: namespaceFixture("a", "istio-injection: enabled, istio.io/rev: 1-23-2"), want: []Severity{Error}},
	})
}
