package manifest

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// IsCRD reports whether obj is a CustomResourceDefinition.
func IsCRD(obj *unstructured.Unstructured) bool {
	return obj.GetKind() == "CustomResourceDefinition" && obj.GroupVersionKind().Group == "apiextensions.k8s.io"
}

// Split separates CRDs from everything else, keeping the input order within
// each part. Installs apply the first part and wait for it to be established
// before the second, because the second may contain instances of the first.
func Split(objs []*unstructured.Unstructured) (crds, rest []*unstructured.Unstructured) {
	for _, o := range objs {
		if IsCRD(o) {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	return crds, rest
}
