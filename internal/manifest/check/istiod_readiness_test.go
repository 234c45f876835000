package check

import "testing"

func TestIstiodReadiness(t *testing.T) {
	istiod := func(container string) string { return deploymentFixture("istiod", "istio-system", "1", "", container) }
	runCases(t, istiodReadiness{}, []checkCase{
		{name: "probe", fixture: istiod("\n      - {name: discovery, image: 'docker.io/istio/pilot:1.23.2', readinessProbe: {httpGet: {path: /ready, port: 8080}}}"), want: none},
		{name: "not istiod", fixture: deploymentWith("\n      - {name: discovery, image: a:1}"), want: none},
		{name: "no probe", fixture: istiod("\n      - {name: discovery, image: 'docker.io/istio/pilot:1.23.2'}"), want: []Severity{Error}},
		{name: "renamed container", fixture: istiod("\n      - {name: pilot, image: 'docker.io/istio/pilot:1.23.2'}"), want: []Severity{Warning}},
	})
}
