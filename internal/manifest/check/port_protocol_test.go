package check

import "testing"

func TestPortProtocol(t *testing.T) {
	runCases(t, portProtocol{}, []checkCase{
		{name: "prefixed names", fixture: serviceFixture("s", "a", "x", "\n  - {name: http-web, port: 80}\n  - {name: grpc, port: 90}\n  - {name: grpc-web-x, port: 91}\n  - {name: tcp-db, port: 5432}"), want: none},
		{name: "appProtocol", fixture: serviceFixture("s", "a", "x", "\n  - {name: web, port: 80, appProtocol: http}"), want: none},
		{name: "udp skipped", fixture: serviceFixture("s", "a", "x", "\n  - {name: dns, port: 53, protocol: UDP}"), want: none},
		{name: "unnamed", fixture: serviceFixture("s", "a", "x", "\n  - {name: web, port: 80}"), want: []Severity{Warning}},
		{name: "unknown appProtocol", fixture: serviceFixture("s", "a", "x", "\n  - {name: web, port: 80, appProtocol: carrier-pigeon}"), want: []Severity{Warning}},
		{name: "service entry without protocol", fixture: "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e, namespace: a}\nspec:\n  hosts: [x.example.com]\n  ports: [{name: web, number: 80}]\n", want: []Severity{Warning}},
		{name: "service entry with protocol", fixture: "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e, namespace: a}\nspec:\n  ports: [{name: web, number: 80, protocol: HTTP}]\n", want: none},
	})
}
