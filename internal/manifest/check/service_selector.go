package check

// serviceSelector reports Services whose selector matches no pod template
// in the set: either the workload lives elsewhere (fine, but worth knowing)
// or a label was renamed and the Service has no endpoints.
type serviceSelector struct{}

// Name implements Checker.
func (serviceSelector) Name() string { return "service-selector" }

// Code implements Checker.
func (serviceSelector) Code() string { return "MV021" }

// Run implements Checker.
func (c serviceSelector) Run(in *Input) []Finding {
	type pods struct {
		ns     string
		labels map[string]string
	}
	var templates []pods
	for _, u := range in.Objects {
		if labels, _, ok := podTemplate(u); ok {
			templates = append(templates, pods{u.GetNamespace(), labels})
		}
	}
	var out []Finding
	for _, u := range in.Objects {
		if !is(u, "", "Service") {
			continue
		}
		raw, _ := u.Object["spec"].(map[string]any)
		selMap, _ := raw["selector"].(map[string]any)
		if len(selMap) == 0 {
			continue // no selector: endpoints are managed by hand or ExternalName
		}
		sel := make(map[string]string, len(selMap))
		for k, v := range selMap {
			s, _ := v.(string)
			sel[k] = s
		}
		matched := false
		for _, t := range templates {
			if t.ns == u.GetNamespace() && selectorMatches(sel, t.labels) {
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, finding(c, Warning, ref(u), "selector matches no pod template in this set",
				"check the selector against the workload's pod labels, or ignore if the workload is deployed separately"))
		}
	}
	return out
}
