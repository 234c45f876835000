package istio

// Labels and annotations Istio reads or writes. They are the contract between
// meshroll and Istio's injector, so they are spelled once, here.
const (
	// LabelRev selects a revision (or a revision tag) on a namespace or pod,
	// and marks every object a revisioned install creates.
	LabelRev = "istio.io/rev"
	// LabelTag marks a revision-tag webhook with the tag's name.
	LabelTag = "istio.io/tag"
	// LabelInjection is the legacy namespace label (istio-injection=enabled|disabled).
	LabelInjection = "istio-injection"
	// LabelSidecarInject opts a pod in or out of injection ("true"/"false").
	LabelSidecarInject = "sidecar.istio.io/inject"
	// AnnotationSidecarInject is the older annotation form of LabelSidecarInject.
	AnnotationSidecarInject = "sidecar.istio.io/inject"
	// AnnotationSidecarStatus is written by the injector on every injected pod;
	// its JSON carries the revision that injected it.
	AnnotationSidecarStatus = "sidecar.istio.io/status"
	// AnnotationProxyImage pins a pod's sidecar image (honoured only as a
	// full reference containing "/").
	AnnotationProxyImage = "sidecar.istio.io/proxyImage"
	// AnnotationProxyImageType overrides the image type (distroless, debug,
	// default) for one pod, over every ProxyConfig.
	AnnotationProxyImageType = "sidecar.istio.io/proxyImageType"
	// AnnotationProxyConfig is a pod's inline ProxyConfig (YAML or JSON).
	AnnotationProxyConfig = "proxy.istio.io/config"
	// LabelDataplaneMode puts a namespace or pod in ambient mode ("ambient").
	LabelDataplaneMode = "istio.io/dataplane-mode"
	// DataplaneModeAmbient is LabelDataplaneMode's ambient value.
	DataplaneModeAmbient = "ambient"
	// LabelOperatorComponent names the component (Pilot, Base, IngressGateways) of installed objects.
	LabelOperatorComponent = "operator.istio.io/component"

	// ProxyContainer is the sidecar's container name.
	ProxyContainer = "istio-proxy"
	// DefaultRevision is the name Istio uses for an install without a revision.
	DefaultRevision = "default"
	// SystemNamespace is where istiod and its configuration live.
	SystemNamespace = "istio-system"
	// InjectorConfigMapPrefix prefixes the per-revision injector ConfigMap
	// (istio-sidecar-injector-<rev>; no suffix for the default revision).
	InjectorConfigMapPrefix = "istio-sidecar-injector"
	// TagWebhookPrefix prefixes a revision tag's MutatingWebhookConfiguration.
	TagWebhookPrefix = "istio-revision-tag-"
)
