package check

import "testing"

func TestInvalidLabels(t *testing.T) {
	runCases(t, invalidLabels{}, []checkCase{
		{name: "valid", fixture: namespaceFixture("a", "app.kubernetes.io/version: 1.23.2, istio.io/rev: 1-23-2"), want: none},
		{name: "plus in value", fixture: namespaceFixture("a", "version: 1.23.2+build"), want: []Severity{Error}},
		{name: "bad key", fixture: namespaceFixture("a", "'bad key': x"), want: []Severity{Error}},
		{name: "pod template", fixture: deploymentFixture("d", "a", "1", "", goodContainer) + "", want: none},
		{name: "bad annotation key", fixture: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a, annotations: {'a/b/c': x}}\n", want: []Severity{Error}},
	})
}
