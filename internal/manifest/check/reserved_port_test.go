package check

import "testing"

func TestReservedPort(t *testing.T) {
	runCases(t, reservedPort{}, []checkCase{
		{name: "ordinary ports", fixture: docs(deploymentWith(goodContainer), serviceFixture("s", "a", "x", "\n  - {name: http-web, port: 80, targetPort: 8080}")), want: none},
		{name: "container on 15001", fixture: deploymentWith("\n      - name: app\n        image: a:1\n        ports: [{containerPort: 15001}]"), want: []Severity{Error}},
		{name: "service port and target port", fixture: serviceFixture("s", "a", "x", "\n  - {name: http-admin, port: 15000, targetPort: 15090}"), want: []Severity{Error, Error}},
		{name: "istio component exempt", fixture: "apiVersion: v1\nkind: Service\nmetadata: {name: istiod-1-23-2, namespace: istio-system, labels: {istio.io/rev: 1-23-2}}\nspec:\n  ports: [{name: grpc-xds, port: 15010}]\n", want: none},
	})
}
