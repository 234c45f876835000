package check

import "testing"

func TestEmptyName(t *testing.T) {
	runCases(t, emptyName{}, []checkCase{
		{name: "named", fixture: namespaceFixture("a", ""), want: none},
		{name: "generateName", fixture: "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: j-, namespace: a}\n", want: none},
		{name: "empty", fixture: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '', namespace: a}\n", want: []Severity{Error}},
	})
}
