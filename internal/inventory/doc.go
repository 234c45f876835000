// Package inventory reads a cluster once into a Snapshot: Istio revisions,
// tags and webhooks, namespaces and their injection labels, and every
// workload with the sidecars its pods run. Everything downstream (check,
// plan, status output) works on the Snapshot, never on the cluster.
//
// Reading is built for clusters with tens of thousands of pods:
//   - every LIST is paged (500 items, continue tokens); pages after the first
//     carry the continue token only, so all pages come from the first page's
//     consistent resourceVersion, and an expired token falls back to one
//     full LIST (client-go's pager);
//   - owners (ReplicaSets, Deployments, DaemonSets, Jobs, CronJobs) and
//     namespaces are read metadata-only; full objects are read only where
//     the spec matters (pods: container images; StatefulSets: updateStrategy;
//     istio-system objects);
//   - pods are visited once and folded into small per-owner aggregates with
//     interned strings; no pod is retained;
//   - the lists run concurrently, and owners are joined to the aggregates
//     at the end.
//
// Callers should build Clients.Kube from a rest.Config whose ContentType is
// "application/vnd.kubernetes.protobuf" (and AcceptContentTypes
// "application/vnd.kubernetes.protobuf,application/json"): decoding pods
// from protobuf is several times cheaper than from JSON. metadata.NewForConfig
// negotiates protobuf on its own.
package inventory

import (
	"errors"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

// Clients are the API clients Read needs: typed for objects whose spec
// matters, metadata-only for everything else.
type Clients struct {
	Kube kubernetes.Interface
	Meta metadata.Interface
}

// ErrNoIstio is returned by Read when the cluster has neither an istiod
// Deployment nor an injector webhook: there is no mesh to upgrade, and the
// caller should say so rather than print an empty status.
var ErrNoIstio = errors.New("no Istio control plane found: no istiod Deployment (label app=istiod in istio-system) and no sidecar injector webhook (label istio.io/rev)")
