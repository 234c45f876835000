package traffic

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Istio resources a rollout writes, through the dynamic client so
// meshroll needs no Istio client library.
var (
	destinationRuleGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
	virtualServiceGVR  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
)

// managedBy labels what a rollout created, so it can be found and removed.
const managedBy = "app.kubernetes.io/managed-by"

// weighted is one version and its share of the traffic.
type weighted struct {
	version string
	weight  int
}

// destinationRule names a subset per version of host's pods.
func destinationRule(ns, name, host string, versions ...string) *unstructured.Unstructured {
	var subsets []any
	for _, v := range versions {
		subsets = append(subsets, map[string]any{"name": v, "labels": map[string]any{VersionLabel: v}})
	}
	return istioObject("DestinationRule", ns, name, map[string]any{"host": host, "subsets": subsets})
}

// virtualService routes every call to host by weight over the subsets; a
// subset with no weight is left out, so a removed subset is never named.
func virtualService(ns, name, host string, routes ...weighted) *unstructured.Unstructured {
	var dests []any
	for _, r := range routes {
		if r.weight == 0 {
			continue
		}
		dests = append(dests, map[string]any{
			"destination": map[string]any{"host": host, "subset": r.version},
			"weight":      int64(r.weight),
		})
	}
	return istioObject("VirtualService", ns, name, map[string]any{
		"hosts": []any{host},
		"http":  []any{map[string]any{"route": dests}},
	})
}

func istioObject(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": map[string]any{managedBy: fieldManager}},
		"spec":       spec,
	}}
}
