package check

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// crdVersions reports CustomResourceDefinitions with no served version or not
// exactly one storage version: the API server rejects them, and during an
// Istio upgrade the CRDs are applied first, so nothing after them lands.
type crdVersions struct{}

// Name implements Checker.
func (crdVersions) Name() string { return "crd-versions" }

// Code implements Checker.
func (crdVersions) Code() string { return "MV022" }

// Run implements Checker.
func (c crdVersions) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		if !is(u, "apiextensions.k8s.io", "CustomResourceDefinition") {
			continue
		}
		versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		served, storage := 0, 0
		for _, v := range versions {
			m, _ := v.(map[string]any)
			if b, _ := m["served"].(bool); b {
				served++
			}
			if b, _ := m["storage"].(bool); b {
				storage++
			}
		}
		if served == 0 {
			out = append(out, finding(c, Error, ref(u), "no version is served", "set served: true on at least one version"))
		}
		if storage != 1 {
			out = append(out, finding(c, Error, ref(u), "has "+itoa(storage)+" storage versions, want exactly 1",
				"set storage: true on exactly one version"))
		}
	}
	return out
}
