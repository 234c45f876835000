package check

import "testing"

func TestRunAsRoot(t *testing.T) {
	runCases(t, runAsRoot{}, []checkCase{
		{name: "non root", fixture: deploymentWith(goodContainer), want: none},
		{name: "pod level non root", fixture: deploymentFixture("d", "a", "1", "\n      securityContext: {runAsNonRoot: true}", "\n      - {name: a, image: a:1}"), want: none},
		{name: "explicit root", fixture: deploymentWith("\n      - {name: a, image: a:1, securityContext: {runAsUser: 0}}"), want: []Severity{Warning}},
		{name: "unspecified", fixture: deploymentWith("\n      - {name: a, image: a:1}"), want: []Severity{Info}},
	})
}
