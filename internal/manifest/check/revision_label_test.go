package check

import "testing"

func TestRevisionLabel(t *testing.T) {
	svc := func(name, labels string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: istio-system, labels: {" + labels + "}}\n"
	}
	cm := func(name, labels string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: istio-system, labels: {" + labels + "}}\n"
	}
	runCases(t, revisionLabel{}, []checkCase{
		{name: "labelled", fixture: docs(svc("istiod-1-23-2", "istio.io/rev: 1-23-2"), cm("istio-sidecar-injector-1-23-2", "istio.io/rev: 1-23-2")), want: none},
		{name: "unrevisioned set", fixture: docs(svc("istiod", ""), cm("istio", "")), want: none},
		{name: "missing label", fixture: docs(svc("istiod-1-23-2", "istio.io/rev: 1-23-2"), cm("istio-sidecar-injector-1-23-2", "")), want: []Severity{Warning}},
		{name: "wrong label", fixture: docs(svc("istiod-1-23-2", "istio.io/rev: 1-23-2"), svc("istiod-1-24-0", "istio.io/rev: 1-23-2"), cm("istio-1-24-0", "istio.io/rev: 1-24-0")), want: []Severity{Error}},
	})
}
