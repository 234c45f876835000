package check

import (
	"strings"
	"testing"
)

func TestWorkloadSelector(t *testing.T) {
	good := deploymentWith(goodContainer)
	runCases(t, workloadSelector{}, []checkCase{
		{name: "matching", fixture: docs(good, pdbFixture("p", "apps", "app", "maxUnavailable: 1")), want: none},
		{name: "missing", fixture: strings.Replace(good, "  selector:\n    matchLabels: {app: app}\n", "", 1), want: []Severity{Error}},
		{name: "mismatch", fixture: strings.Replace(good, "matchLabels: {app: app}", "matchLabels: {app: other}", 1), want: []Severity{Error}},
		{name: "expressions only", fixture: strings.Replace(good, "matchLabels: {app: app}", "matchExpressions: [{key: app, operator: Exists}]", 1), want: none},
		{name: "empty pdb selector", fixture: "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: p, namespace: a}\nspec: {maxUnavailable: 1, selector: {}}\n", want: []Severity{Warning}},
	})
}
