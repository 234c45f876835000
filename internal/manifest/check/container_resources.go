package check

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// containerResources reports containers without CPU and memory requests
// (the scheduler packs them blindly and HPAs on CPU cannot work) and without a
// memory limit (one leaking pod can evict its neighbours).
type containerResources struct{}

// Name implements Checker.
func (containerResources) Name() string { return "container-resources" }

// Code implements Checker.
func (containerResources) Code() string { return "MV008" }

// Run implements Checker.
func (c containerResources) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		for _, nc := range containers(spec) {
			var missing []string
			r := nc.c.Resources
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := r.Requests[name]; !ok {
					if _, ok := r.Limits[name]; !ok { // a limit alone defaults the request
						missing = append(missing, string(name)+" request")
					}
				}
			}
			if len(missing) > 0 {
				out = append(out, finding(c, Warning, ref(u), nc.label()+" has no "+strings.Join(missing, " or "),
					"set resources.requests.cpu and resources.requests.memory from observed usage"))
			}
			if _, ok := r.Limits[corev1.ResourceMemory]; !ok {
				out = append(out, finding(c, Info, ref(u), nc.label()+" has no memory limit",
					"set resources.limits.memory so a leak is contained to the pod"))
			}
		}
	}
	return out
}
