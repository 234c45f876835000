package check

// workloadSelector reports Deployments, StatefulSets, DaemonSets and
// ReplicaSets with a missing or empty selector, or one their own pod
// template does not match (the API server rejects both), and PDBs with an
// empty selector (they cover every pod of the namespace).
type workloadSelector struct{}

// Name implements Checker.
func (workloadSelector) Name() string { return "workload-selector" }

// Code implements Checker.
func (workloadSelector) Code() string { return "MV020" }

// Run implements Checker.
func (c workloadSelector) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		switch {
		case isPDB(u):
			sel, expr, _ := matchLabels(u, "spec", "selector")
			if len(sel) == 0 && !expr {
				out = append(out, finding(c, Warning, ref(u), "PodDisruptionBudget has an empty selector and covers every pod in the namespace",
					"set spec.selector.matchLabels to the workload's pod labels"))
			}
		case group(u) == "apps" && (u.GetKind() == "Deployment" || u.GetKind() == "StatefulSet" || u.GetKind() == "DaemonSet" || u.GetKind() == "ReplicaSet"):
			sel, expr, found := matchLabels(u, "spec", "selector")
			if !found || (len(sel) == 0 && !expr) {
				out = append(out, finding(c, Error, ref(u), "workload has no selector",
					"set spec.selector.matchLabels to labels of the pod template"))
				continue
			}
			labels, _, _ := podTemplate(u)
			if len(sel) > 0 && !selectorMatches(sel, labels) {
				out = append(out, finding(c, Error, ref(u), "spec.selector does not match the pod template's labels",
					"make spec.template.metadata.labels include every spec.selector.matchLabels entry"))
			}
		}
	}
	return out
}
