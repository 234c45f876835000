package check

import "testing"

func TestDuplicateEnv(t *testing.T) {
	runCases(t, duplicateEnv{}, []checkCase{
		{name: "unique", fixture: deploymentWith(goodContainer), want: none},
		{name: "same name in two containers", fixture: deploymentWith("\n      - {name: a, image: a:1, env: [{name: X}]}\n      - {name: b, image: b:1, env: [{name: X}]}"), want: none},
		{name: "duplicate", fixture: deploymentWith("\n      - {name: a, image: a:1, env: [{name: X, value: '1'}, {name: Z}, {name: X, value: '2'}]}"), want: []Severity{Error}},
	})
}
