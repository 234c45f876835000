package check

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// istiodReadiness reports an istiod Deployment whose discovery container has
// no readinessProbe: the canary upgrade waits for istiod to be Ready before it
// moves any workload, and without a probe "Ready" means only "started".
type istiodReadiness struct{}

// Name implements Checker.
func (istiodReadiness) Name() string { return "istiod-readiness" }

// Code implements Checker.
func (istiodReadiness) Code() string { return "MV025" }

// isIstiod reports whether u is an istiod Deployment.
func isIstiod(u *unstructured.Unstructured) bool {
	if !is(u, "apps", "Deployment") {
		return false
	}
	labels, _, _ := podTemplate(u)
	return labels["app"] == "istiod" || u.GetLabels()["app"] == "istiod"
}

// Run implements Checker.
func (c istiodReadiness) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		if !isIstiod(u) {
			continue
		}
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		found := false
		for _, ctr := range spec.Containers {
			if ctr.Name != "discovery" {
				continue
			}
			found = true
			if ctr.ReadinessProbe == nil {
				out = append(out, finding(c, Error, ref(u), "istiod container \"discovery\" has no readinessProbe",
					"restore the chart's readinessProbe (httpGet /ready on port 8080)"))
			}
		}
		if !found {
			out = append(out, finding(c, Warning, ref(u), "istiod Deployment has no container named \"discovery\"",
				"keep the chart's container name; tooling and probes refer to it"))
		}
	}
	return out
}
