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
//   - ReplicaSets, Jobs and namespaces are read metadata-only; full objects
//     are read where the spec matters (pods: container images and proxy
//     environment; Deployments, DaemonSets, StatefulSets and CronJobs: the
//     pod template, folded at once into a small summary; istio-system
//     objects; ProxyConfigs);
//   - pods are visited once and folded into small per-owner aggregates with
//     interned strings; no pod is retained;
//   - the lists run concurrently, and owners are joined to the aggregates
//     at the end.
//
// # Which revision runs a sidecar
//
// A pod's sidecar is attributed to a revision only on evidence, in this
// order, and ProxyGroup.Attribution names the evidence used:
//
//  1. the istio.io/rev annotation, which every injection template since
//     revisions exist writes with the injecting revision ("default" for a
//     non-revisioned install) — the pod label of the same name is the
//     template's request, not evidence of who answered;
//  2. the revision in the sidecar.istio.io/status annotation (older
//     injectors, istioctl kube-inject);
//  3. the istiod the proxy talks to: PROXY_CONFIG's discoveryAddress (or
//     CA_ADDR) in the istio-proxy environment, istiod-<rev>.<ns>.svc → <rev>,
//     istiod.<ns>.svc → default;
//  4. the pod's injection selection: its namespace and pod labels select a
//     revision (directly, through a tag or the default injector) whose
//     injector webhook existed before the pod was created and which injects
//     exactly the proxy's release.
//
// Without any of these the answer is RevisionUnknown ("(unknown)"), reported
// as such by status and check — never guessed. An istio-proxy container whose
// image is still "auto" was never injected: it counts as no sidecar.
//
// # Which image a sidecar should run
//
// ProxyGroup.WantImage is the image the pod's own revision would inject into
// it now, computed like the injection template: a sidecar.istio.io/proxyImage
// annotation that is a full reference pins the image; otherwise the
// revision's hub, image name and tag with the image type (distroless, debug)
// chosen by the pod's sidecar.istio.io/proxyImageType annotation, a matching
// ProxyConfig, the proxy.istio.io/config annotation, a namespace or mesh-wide
// ProxyConfig, the revision's mesh config defaultConfig.image.imageType, then
// global.variant (see istio.PodImageType for the exact precedence). A sidecar
// whose image differs from WantImage is stale; one that matches is not,
// whatever other revisions inject.
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
