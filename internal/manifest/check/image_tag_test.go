package check

import "testing"

func TestImageTag(t *testing.T) {
	runCases(t, imageTag{}, []checkCase{
		{name: "tagged", fixture: deploymentWith(goodContainer), want: none},
		{name: "digest", fixture: deploymentWith("\n      - {name: a, image: 'example.com/a@sha256:0123'}"), want: none},
		{name: "registry port no tag", fixture: deploymentWith("\n      - {name: a, image: 'registry:5000/a'}"), want: []Severity{Warning}},
		{name: "latest", fixture: deploymentWith("\n      - {name: a, image: 'a:latest'}"), want: []Severity{Warning}},
		{name: "istio auto image", fixture: deploymentWith("\n      - {name: istio-proxy, image: auto}"), want: none},
		{name: "empty", fixture: deploymentWith("\n      - {name: a}"), want: []Severity{Error}},
	})
}
