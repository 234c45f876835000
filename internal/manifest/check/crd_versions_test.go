package check

import "testing"

func TestCRDVersions(t *testing.T) {
	runCases(t, crdVersions{}, []checkCase{
		{name: "served storage", fixture: widgetCRD, want: none},
		{name: "not served", fixture: crdWithVersions("false", "true"), want: []Severity{Error}},
		{name: "no storage", fixture: crdWithVersions("true", "false"), want: []Severity{Error}},
	})
}
