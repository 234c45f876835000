package manifest

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(apiVersion, kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	return u
}

func TestSplit(t *testing.T) {
	in := []*unstructured.Unstructured{
		obj("v1", "ServiceAccount", "istiod"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "gateways.networking.istio.io"),
		obj("example.com/v1", "CustomResourceDefinition", "not-a-crd"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "sidecars.networking.istio.io"),
	}
	crds, rest := Split(in)
	if len(crds) != 2 || crds[0].GetName() != "gateways.networking.istio.io" || crds[1].GetName() != "sidecars.networking.istio.io" {
		t.Fatalf("crds = %v", names(crds))
	}
	if len(rest) != 2 || rest[0].GetName() != "istiod" || rest[1].GetName() != "not-a-crd" {
		t.Fatalf("rest = %v", names(rest))
	}
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}
