package check

import "testing"

func TestDuplicateResource(t *testing.T) {
	runCases(t, duplicateResource{}, []checkCase{
		{name: "distinct", fixture: docs(namespaceFixture("a", ""), namespaceFixture("b", "")), want: none},
		{name: "same name other namespace", fixture: docs(serviceFixture("s", "a", "x", "[]"), serviceFixture("s", "b", "x", "[]")), want: none},
		{name: "duplicate", fixture: docs(namespaceFixture("a", ""), namespaceFixture("a", "x: y")), want: []Severity{Error}},
	})
}
