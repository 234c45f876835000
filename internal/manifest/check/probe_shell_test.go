package check

import "testing"

func TestProbeShell(t *testing.T) {
	runCases(t, probeShell{}, []checkCase{
		{name: "http probe", fixture: deploymentWith(goodContainer), want: none},
		{name: "exec without curl", fixture: deploymentWith("\n      - name: app\n        image: a:1\n        livenessProbe: {exec: {command: [cat, /tmp/healthy]}}"), want: none},
		{name: "sh -c curl", fixture: deploymentWith("\n      - name: app\n        image: a:1\n        livenessProbe: {exec: {command: [sh, -c, 'curl -fs localhost:8080/health']}}"), want: []Severity{Warning}},
		{name: "wget by path", fixture: deploymentWith("\n      - name: app\n        image: a:1\n        readinessProbe: {exec: {command: [/usr/bin/wget, -q, localhost]}}"), want: []Severity{Warning}},
	})
}
