package check

import "testing"

func TestContainerResources(t *testing.T) {
	runCases(t, containerResources{}, []checkCase{
		{name: "requests and memory limit", fixture: deploymentWith(goodContainer), want: none},
		{name: "limits only default requests", fixture: deploymentWith("\n      - name: app\n        image: a:1\n        resources: {limits: {cpu: 1, memory: 1Gi}}"), want: none},
		{name: "nothing", fixture: deploymentWith("\n      - name: app\n        image: a:1"), want: []Severity{Warning, Info}},
		{name: "cronjob container", fixture: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c, namespace: a}\nspec:\n  schedule: '@hourly'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: c, image: a:1, resources: {requests: {memory: 1Mi}, limits: {memory: 1Mi}}}\n", want: []Severity{Warning}},
	})
}
