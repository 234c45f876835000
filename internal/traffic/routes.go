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

// WarmHeader is the request header of the routes that name every subset
// a step may send calls to, so that clients hold those subsets' clusters
// before any weight names them. No caller sends it.
const WarmHeader = "x-meshroll-warm"

// virtualService routes every call to host by weight over the subsets; a
// subset with no weight is left out of the weights, and a weighted entry
// with no version is the host itself (every pod of the Service, as with no
// VirtualService). Before that route come one route per warm subset that
// only calls carrying WarmHeader match: proxyless gRPC clients (grpc-go)
// build a cluster when a route first names it, and a call that a weight
// sends to a cluster in that moment can fail ("unknown cluster selected for
// RPC"); with the warm route the cluster is built before a weight names it.
func virtualService(ns, name, host string, warm []string, routes ...weighted) *unstructured.Unstructured {
	var dests []any
	for _, r := range routes {
		if r.weight == 0 {
			continue
		}
		dest := map[string]any{"host": host}
		if r.version != "" {
			dest["subset"] = r.version
		}
		dests = append(dests, map[string]any{"destination": dest, "weight": int64(r.weight)})
	}
	var http []any
	for _, v := range warm {
		http = append(http, map[string]any{
			"name":  "meshroll-warm-" + v,
			"match": []any{map[string]any{"headers": map[string]any{WarmHeader: map[string]any{"exact": v}}}},
			"route": []any{map[string]any{"destination": map[string]any{"host": host, "subset": v}}},
		})
	}
	http = append(http, map[string]any{"name": "meshroll-weights", "route": dests})
	return istioObject("VirtualService", ns, name, map[string]any{"hosts": []any{host}, "http": http})
}

func istioObject(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": map[string]any{managedBy: fieldManager}},
		"spec":       spec,
	}}
}
