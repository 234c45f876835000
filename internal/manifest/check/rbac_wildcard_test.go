package check

import "testing"

func TestRBACWildcard(t *testing.T) {
	role := func(kind, rule string) string {
		return "apiVersion: rbac.authorization.k8s.io/v1\nkind: " + kind + "\nmetadata: {name: r, namespace: a}\nrules:\n- " + rule + "\n"
	}
	runCases(t, rbacWildcard{}, []checkCase{
		{name: "explicit", fixture: role("ClusterRole", "{apiGroups: [''], resources: [pods], verbs: [get, list]}"), want: none},
		{name: "all verbs", fixture: role("ClusterRole", "{apiGroups: [''], resources: [pods], verbs: ['*']}"), want: []Severity{Warning}},
		{name: "all resources and verbs in a Role", fixture: role("Role", "{apiGroups: ['*'], resources: ['*'], verbs: ['*']}"), want: []Severity{Warning, Warning}},
	})
}
