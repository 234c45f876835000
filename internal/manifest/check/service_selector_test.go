package check

import "testing"

func TestServiceSelector(t *testing.T) {
	runCases(t, serviceSelector{}, []checkCase{
		{name: "matches deployment", fixture: docs(deploymentWith(goodContainer), serviceFixture("s", "apps", "app", "[]")), want: none},
		{name: "no selector", fixture: "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\nspec: {ports: [{port: 80}]}\n", want: none},
		{name: "matches nothing", fixture: docs(deploymentWith(goodContainer), serviceFixture("s", "apps", "typo", "[]")), want: []Severity{Warning}},
		{name: "other namespace", fixture: docs(deploymentWith(goodContainer), serviceFixture("s", "other", "app", "[]")), want: []Severity{Warning}},
	})
}
