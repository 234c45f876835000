package check

import (
	"fmt"
	"slices"
)

// rbacWildcard reports Roles and ClusterRoles granting "*" verbs or "*"
// resources: they silently grow with every new API the cluster gains, which is
// how a mesh component ends up able to read every Secret.
type rbacWildcard struct{}

// Name implements Checker.
func (rbacWildcard) Name() string { return "rbac-wildcard" }

// Code implements Checker.
func (rbacWildcard) Code() string { return "MV018" }

// Run implements Checker.
func (c rbacWildcard) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		if group(u) != "rbac.authorization.k8s.io" || (u.GetKind() != "ClusterRole" && u.GetKind() != "Role") {
			continue
		}
		rules, _ := u.Object["rules"].([]any)
		for i, r := range rules {
			m, _ := r.(map[string]any)
			verbs, resources := stringList(m["verbs"]), stringList(m["resources"])
			if slices.Contains(verbs, "*") {
				out = append(out, finding(c, Warning, ref(u), fmt.Sprintf("rule %d grants all verbs (\"*\") on %v", i, resources),
					"list the verbs the component needs (get, list, watch, …)"))
			}
			if slices.Contains(resources, "*") {
				out = append(out, finding(c, Warning, ref(u), fmt.Sprintf("rule %d grants %v on all resources (\"*\") of %v", i, verbs, stringList(m["apiGroups"])),
					"list the resources the component needs"))
			}
		}
	}
	return out
}

// stringList reads a YAML list of strings.
func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
