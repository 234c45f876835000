package inventory

import (
	"sort"
	"time"

	"github.com/meshroll/meshroll/internal/istio"
)

// Snapshot is everything meshroll knows about one cluster's mesh at one
// moment. It is plain data (JSON is `meshroll status -o json`) so that check
// and plan can reason over it without a cluster.
type Snapshot struct {
	// Revisions are the installed control planes, sorted by name.
	Revisions []Revision `json:"revisions"`
	// Tags are the revision tags, sorted by name.
	Tags []Tag `json:"tags"`
	// DefaultRevision is the revision the default injector points at ("" when none).
	DefaultRevision string `json:"defaultRevision,omitempty"`
	// EnableNamespacesByDefault is true when some injector injects unlabelled namespaces.
	EnableNamespacesByDefault bool `json:"enableNamespacesByDefault,omitempty"`
	// Namespaces are all namespaces with their injection labels, sorted by name.
	Namespaces []Namespace `json:"namespaces"`
	// Workloads are the pod owners meshroll can reason about, sorted by
	// namespace, kind and name.
	Workloads []Workload `json:"workloads"`
	// Webhooks are Istio's mutating and validating webhook configurations, sorted by kind and name.
	Webhooks []Webhook `json:"webhooks"`
	// ProxyConfigs are the networking.istio.io ProxyConfig resources that set
	// an image type, sorted by namespace and name.
	ProxyConfigs []istio.ProxyConfig `json:"proxyConfigs,omitempty"`
	// Pods counts every pod seen, terminated ones included.
	Pods int `json:"pods"`
	// TakenAt is when the read started, as passed in by the caller.
	TakenAt time.Time `json:"takenAt"`
}

// Revision is one installed Istio control plane.
type Revision struct {
	// Name is the revision ("default" for a non-revisioned install).
	Name string `json:"name"`
	// Version is the istiod image tag's release ("1.23.2"), "" when no istiod runs.
	Version string `json:"version,omitempty"`
	// Image is the istiod discovery container image.
	Image string `json:"image,omitempty"`
	// Deployment is the istiod Deployment's name, "" when missing.
	Deployment string `json:"deployment,omitempty"`
	// ReadyReplicas and DesiredReplicas come from the istiod Deployment.
	ReadyReplicas   int32 `json:"readyReplicas"`
	DesiredReplicas int32 `json:"desiredReplicas"`
	// InjectorWebhooks are the revision's own MutatingWebhookConfigurations.
	InjectorWebhooks []string `json:"injectorWebhooks,omitempty"`
	// ConfigMap is the injector ConfigMap (istio-sidecar-injector[-<rev>]).
	ConfigMap string `json:"configMap,omitempty"`
	// ProxyImage is the sidecar image the injector would inject now; a proxy
	// on this revision with another image is stale.
	ProxyImage string `json:"proxyImage,omitempty"`
	// ProxyImageError says why ProxyImage could not be computed.
	ProxyImageError string `json:"proxyImageError,omitempty"`
	// ImageSpec is what the injector builds images from; pods that override
	// the image type or pin an image get another image from the same spec.
	ImageSpec *istio.ImageSpec `json:"imageSpec,omitempty"`
	// ProxyImageType is defaultConfig.image.imageType of the revision's mesh
	// config ("" when unset): the image type of pods that set none.
	ProxyImageType string `json:"proxyImageType,omitempty"`
	// Tags are the revision tags pointing at this revision, sorted.
	Tags []string `json:"tags,omitempty"`
	// Default is true when the default injector points at this revision.
	Default bool `json:"default,omitempty"`
	// Service is the istiod Service name the webhooks call (istiod[-<rev>]).
	Service string `json:"service"`
	// ServiceExists is false when that Service is missing: injection fails closed.
	ServiceExists bool `json:"serviceExists"`
}

// Tag is a revision tag: a stable name namespaces can point at while the
// revision behind it moves.
type Tag struct {
	// Name is the tag (istio.io/tag label).
	Name string `json:"name"`
	// Revision is the revision the tag's webhook points at (istio.io/rev label).
	Revision string `json:"revision"`
	// Webhook is the tag's MutatingWebhookConfiguration.
	Webhook string `json:"webhook"`
	// InstallerLabels are operator.istio.io labels the tag's webhook carries
	// (none when istioctl or meshroll wrote it): with them, istioctl's purge
	// deletes the tag as part of an install.
	InstallerLabels []string `json:"installerLabels,omitempty"`
}

// Namespace is a namespace's injection configuration.
type Namespace struct {
	// Name is the namespace name.
	Name string `json:"name"`
	// InjectionLabel is the istio-injection label value ("" when absent).
	InjectionLabel string `json:"injectionLabel,omitempty"`
	// RevLabel is the istio.io/rev label value ("" when absent).
	RevLabel string `json:"revLabel,omitempty"`
	// HasInjectionLabel and HasRevLabel tell an empty label from a missing one.
	HasInjectionLabel bool `json:"hasInjectionLabel,omitempty"`
	HasRevLabel       bool `json:"hasRevLabel,omitempty"`
	// DataplaneMode is the istio.io/dataplane-mode label ("ambient"), "" when absent.
	DataplaneMode string `json:"dataplaneMode,omitempty"`
	// Injection is what a pod without injection labels of its own would get here.
	Injection istio.Injection `json:"injection"`
}

// Workload is a pod owner and the proxies its pods run.
type Workload struct {
	// Kind is Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod, or the
	// controller kind meshroll does not know (e.g. ReplicaSet, Rollout).
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Restartable is true when a rollout restart replaces every pod.
	Restartable bool `json:"restartable"`
	// RestartReason says why (or why not).
	RestartReason string `json:"restartReason"`
	// TemplateRev is the istio.io/rev label of the workload's pod template
	// (for a bare Pod or an unknown controller: of most of its pods; the
	// injector writes the revision as an annotation, so the label is the
	// template's); "" when absent.
	TemplateRev string `json:"templateRev,omitempty"`
	// Template is what the workload's pod template says about injection;
	// nil for bare Pods and controllers meshroll does not read.
	Template *Template `json:"template,omitempty"`
	// Proxies aggregates the workload's pods by sidecar.
	Proxies []ProxyGroup `json:"proxies,omitempty"`
}

// ProxyGroup counts a workload's pods that run the same sidecar.
type ProxyGroup struct {
	// Revision is the revision that injected the sidecar ("" when none).
	Revision string `json:"revision"`
	// Image is the istio-proxy image ("" when no sidecar).
	Image string `json:"image"`
	// Version is the image's release.
	Version string `json:"version,omitempty"`
	// Expected is the revision that would inject these pods if they were
	// created now ("" when none would); it differs from Revision for pods a
	// restart would move, and is "" for opted-out pods.
	Expected string `json:"expected,omitempty"`
	// ExpectedReason explains Expected.
	ExpectedReason string `json:"expectedReason,omitempty"`
	// Attribution is the evidence for Revision (one of the Evidence*
	// constants); "" for pods without a sidecar.
	Attribution string `json:"attribution,omitempty"`
	// WantImage is the image Revision's injector would give these pods now,
	// with their own overrides (pinned image, image type) applied; "" when
	// it cannot be known. A sidecar running another image is stale.
	WantImage string `json:"wantImage,omitempty"`
	// WantImageReason says which override decided WantImage ("" for none).
	WantImageReason string `json:"wantImageReason,omitempty"`
	// Pods counts pods that are not terminated.
	Pods int `json:"pods"`
	// Terminated counts Succeeded/Failed pods: they keep a revision in use until deleted.
	Terminated int `json:"terminated,omitempty"`
}

// Template is the part of a workload's pod template that decides what its
// next pod gets: it matters for workloads with no pods (scaled to zero, a
// CronJob between runs) and for gateways whose template relies on injection.
type Template struct {
	// ProxyImage is the istio-proxy container image the template names:
	// istio.AutoImage for gateway-style injection, an image for a template
	// injected by hand, "" when the template has no istio-proxy container.
	ProxyImage string `json:"proxyImage,omitempty"`
	// Injection is what a pod created from the template now would get.
	Injection istio.Injection `json:"injection"`
	// Replicas is spec.replicas (nil for kinds without it).
	Replicas *int32 `json:"replicas,omitempty"`
}

// Webhook is one Istio webhook configuration and the Service it calls.
type Webhook struct {
	// Kind is MutatingWebhookConfiguration or ValidatingWebhookConfiguration.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Revision and Tag are the istio.io/rev and istio.io/tag labels.
	Revision string `json:"revision,omitempty"`
	Tag      string `json:"tag,omitempty"`
	// Service is the target as "ns/name:port/path" ("" for a URL).
	Service string `json:"service,omitempty"`
	// URL is clientConfig.url when used instead of a Service.
	URL string `json:"url,omitempty"`
	// ServiceExists is false when the target Service is missing.
	ServiceExists bool `json:"serviceExists"`
}

// RevisionUnknown is ProxyGroup.Revision for a sidecar no evidence ties to a
// revision. The parentheses keep it from ever naming a real revision.
const RevisionUnknown = "(unknown)"

// Evidence for a ProxyGroup's revision, strongest first.
const (
	// EvidenceAnnotation: the istio.io/rev annotation the injector writes.
	EvidenceAnnotation = "annotation istio.io/rev"
	// EvidenceStatus: the revision in the sidecar.istio.io/status annotation.
	EvidenceStatus = "annotation sidecar.istio.io/status"
	// EvidenceDiscovery: the istiod-<rev> Service in the proxy's discovery address.
	EvidenceDiscovery = "discovery address"
	// EvidenceSelection: the pod's injection selects the revision, whose
	// injector predates the pod and injects this proxy's version.
	EvidenceSelection = "injection selection"
	// EvidenceNone: nothing ties the sidecar to a revision.
	EvidenceNone = "no evidence"
)

// Revision returns the named revision, or nil.
func (s *Snapshot) Revision(name string) *Revision {
	for i := range s.Revisions {
		if s.Revisions[i].Name == name {
			return &s.Revisions[i]
		}
	}
	return nil
}

// Namespace returns the named namespace, or nil.
func (s *Snapshot) Namespace(name string) *Namespace {
	i := sort.Search(len(s.Namespaces), func(i int) bool { return s.Namespaces[i].Name >= name })
	if i < len(s.Namespaces) && s.Namespaces[i].Name == name {
		return &s.Namespaces[i]
	}
	return nil
}

// Injectors rebuilds the injection webhooks' view from the snapshot, so
// callers can ask which revision would inject a pod.
func (s *Snapshot) Injectors() istio.Injectors {
	inj := istio.Injectors{
		Revisions:                 map[string]bool{},
		Tags:                      map[string]string{},
		Default:                   s.DefaultRevision,
		EnableNamespacesByDefault: s.EnableNamespacesByDefault,
	}
	for _, r := range s.Revisions {
		if len(r.InjectorWebhooks) > 0 {
			inj.Revisions[r.Name] = true
		}
	}
	for _, t := range s.Tags {
		inj.Tags[t.Name] = t.Revision
	}
	return inj
}

// Total sums a workload's pods over its proxy groups (running, terminated).
func (w *Workload) Total() (pods, terminated int) {
	for _, p := range w.Proxies {
		pods += p.Pods
		terminated += p.Terminated
	}
	return pods, terminated
}
