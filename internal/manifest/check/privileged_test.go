package check

import "testing"

func TestPrivileged(t *testing.T) {
	runCases(t, privileged{}, []checkCase{
		{name: "plain", fixture: deploymentWith(goodContainer), want: none},
		{name: "privileged", fixture: deploymentWith("\n      - {name: a, image: a:1, securityContext: {privileged: true}}"), want: []Severity{Error}},
		{name: "host network and pid", fixture: deploymentFixture("d", "a", "1", "\n      hostNetwork: true\n      hostPID: true", goodContainer), want: []Severity{Warning, Warning}},
	})
}
