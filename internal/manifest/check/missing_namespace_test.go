package check

import "testing"

func TestMissingNamespace(t *testing.T) {
	runCases(t, missingNamespace{}, []checkCase{
		{name: "namespaced with namespace", fixture: serviceFixture("s", "a", "x", "[]"), want: none},
		{name: "cluster scoped", fixture: namespaceFixture("a", "") + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n", want: none},
		{name: "service without namespace", fixture: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", want: []Severity{Warning}},
		{name: "istio kind without namespace", fixture: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n", want: []Severity{Warning}},
		{name: "cluster-scoped CRD kind", fixture: docs(
			"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: things.example.com}\nspec: {group: example.com, scope: Cluster, names: {kind: Thing}}\n",
			"apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n"), want: none},
		{name: "unknown kind is skipped", fixture: "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n", want: none},
	})
}
