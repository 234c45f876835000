package check

import "testing"

func TestYAMLValid(t *testing.T) {
	runCases(t, yamlValid{}, []checkCase{
		{name: "valid", fixture: namespaceFixture("a", ""), want: none},
		{name: "broken indentation", fixture: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n labels: {}\n", want: []Severity{Error}},
		{name: "no kind", fixture: "apiVersion: v1\nmetadata: {name: a}\n", want: []Severity{Error}},
	})
}
