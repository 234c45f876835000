package istio

import "strings"

// InjectionTarget is what Istio's injection webhooks look at when a pod is
// created: the namespace's labels and the pod's own labels and annotations.
// Keeping it a plain value lets inventory, check and plan ask "who would
// inject this pod?" without a cluster.
type InjectionTarget struct {
	// Namespace is the pod's namespace name; Istio's injector never injects
	// into Kubernetes' own system namespaces.
	Namespace string
	// NamespaceLabels are the labels of the pod's namespace.
	NamespaceLabels map[string]string
	// PodLabels are the pod's (or pod template's) labels.
	PodLabels map[string]string
	// PodAnnotations are the pod's (or pod template's) annotations.
	PodAnnotations map[string]string
	// HostNetwork pods are never injected: iptables would redirect the node's traffic.
	HostNetwork bool
}

// Injectors is the set of injection webhooks installed in a cluster, reduced
// to what decides which one answers a pod.
type Injectors struct {
	// Revisions holds every revision that has its own injector webhook.
	Revisions map[string]bool
	// Tags maps a revision tag to the revision its webhook points at.
	Tags map[string]string
	// Default is the revision the default injector points at: the one the
	// `default` tag names, or "default" for a non-revisioned install; "" when
	// nothing answers istio-injection=enabled or sidecar.istio.io/inject=true.
	Default string
	// EnableNamespacesByDefault mirrors the chart value
	// sidecarInjectorWebhook.enableNamespacesByDefault: unlabelled namespaces
	// are injected by the default injector.
	EnableNamespacesByDefault bool
}

// Injection is the verdict for one pod: which revision would inject it and why.
type Injection struct {
	// Injected is true when some webhook would add a sidecar.
	Injected bool `json:"injected"`
	// Revision is the revision whose injector answers ("" when not injected).
	Revision string `json:"revision,omitempty"`
	// Via is the label value that selected the injector: a revision or a tag
	// name, or "default" for the default injector.
	Via string `json:"via,omitempty"`
	// Reason says which rule decided, in words for an operator.
	Reason string `json:"reason"`
}

// ignoredNamespace reports the namespaces Istio's injector refuses regardless
// of labels (pkg/kube/inject IgnoredNamespaces).
func ignoredNamespace(ns string) bool {
	switch ns {
	case "kube-system", "kube-public", "kube-node-lease", "local-path-storage":
		return true
	}
	return false
}

// Resolve returns the revision value v (a namespace or pod istio.io/rev
// label) selects: a revision with its own injector, or the revision a tag
// points at. The value "default" means the default injector. ok is false
// when no webhook would match v.
func (inj Injectors) Resolve(v string) (revision string, ok bool) {
	if v == DefaultRevision {
		return inj.Default, inj.Default != ""
	}
	if inj.Revisions[v] {
		return v, true
	}
	if rev, found := inj.Tags[v]; found && rev != "" {
		return rev, true
	}
	return "", false
}

// Injection decides, as Istio's rendered webhook selectors plus the
// injector's own policy do, whether and by which revision a pod would be
// injected. The order mirrors the selectors in the istio-discovery chart's
// mutatingwebhook.yaml and revision-tags.yaml:
//
//  1. istio-injection=enabled on the namespace → the default injector; it wins
//     over everything and a pod istio.io/rev label is ignored. Any other value
//     (disabled) opts the whole namespace out.
//  2. istio.io/rev=<rev|tag> on the namespace (without istio-injection) → that
//     revision; a pod istio.io/rev label is ignored.
//  3. Neither → pod label istio.io/rev=<rev|tag>, or pod label
//     sidecar.istio.io/inject=true (without istio.io/rev) → the default injector.
//
// A pod label sidecar.istio.io/inject=false keeps every webhook from firing;
// once a webhook fires, the injector reads the label (or, without it, the
// annotation) and injects only for y/yes/true/on or when unset (policy
// "enabled", the chart default). NeverInjectSelector/AlwaysInjectSelector in
// the injector config are not modelled.
func (inj Injectors) Injection(t InjectionTarget) Injection {
	if ignoredNamespace(t.Namespace) {
		return Injection{Reason: "namespace " + t.Namespace + " is never injected by Istio"}
	}
	if t.HostNetwork {
		return Injection{Reason: "hostNetwork pods are never injected"}
	}
	if t.PodLabels[LabelSidecarInject] == "false" {
		return Injection{Reason: "pod label " + LabelSidecarInject + "=false opts out"}
	}

	nsInjection, hasNSInjection := t.NamespaceLabels[LabelInjection]
	nsRev, hasNSRev := t.NamespaceLabels[LabelRev]
	podRev, hasPodRev := t.PodLabels[LabelRev]

	var matched Injection
	switch {
	case hasNSInjection:
		if nsInjection != "enabled" {
			return Injection{Reason: "namespace label " + LabelInjection + "=" + nsInjection + " opts out"}
		}
		if inj.Default == "" {
			return Injection{Reason: "namespace label " + LabelInjection + "=enabled but no default injector is installed"}
		}
		matched = Injection{Revision: inj.Default, Via: DefaultRevision,
			Reason: "namespace label " + LabelInjection + "=enabled selects the default injector"}
	case hasNSRev:
		rev, ok := inj.Resolve(nsRev)
		if !ok {
			return Injection{Reason: "namespace label " + LabelRev + "=" + nsRev + " names no installed revision or tag"}
		}
		matched = Injection{Revision: rev, Via: nsRev, Reason: "namespace label " + LabelRev + "=" + nsRev + " selects revision " + rev}
	case hasPodRev:
		rev, ok := inj.Resolve(podRev)
		if !ok {
			return Injection{Reason: "pod label " + LabelRev + "=" + podRev + " names no installed revision or tag"}
		}
		matched = Injection{Revision: rev, Via: podRev, Reason: "pod label " + LabelRev + "=" + podRev + " selects revision " + rev}
	case t.PodLabels[LabelSidecarInject] == "true":
		if inj.Default == "" {
			return Injection{Reason: "pod label " + LabelSidecarInject + "=true but no default injector is installed"}
		}
		matched = Injection{Revision: inj.Default, Via: DefaultRevision,
			Reason: "pod label " + LabelSidecarInject + "=true selects the default injector"}
	case inj.EnableNamespacesByDefault && inj.Default != "" && !hasSidecarInjectLabel(t.PodLabels):
		matched = Injection{Revision: inj.Default, Via: DefaultRevision,
			Reason: "enableNamespacesByDefault injects unlabelled namespaces with the default injector"}
	default:
		return Injection{Reason: "no injection label on the namespace or the pod"}
	}

	if optOut, why := podOptsOut(t); optOut {
		return Injection{Reason: why}
	}
	matched.Injected = true
	return matched
}

func hasSidecarInjectLabel(labels map[string]string) bool {
	_, ok := labels[LabelSidecarInject]
	return ok
}

// podOptsOut applies the injector's own check once a webhook has fired: the
// label wins over the annotation, and only YAML-true spellings or no value
// at all allow injection.
func podOptsOut(t InjectionTarget) (bool, string) {
	value, source := t.PodAnnotations[AnnotationSidecarInject], "annotation"
	if v, ok := t.PodLabels[LabelSidecarInject]; ok {
		value, source = v, "label"
	}
	switch strings.ToLower(value) {
	case "", "y", "yes", "true", "on":
		return false, ""
	}
	return true, "pod " + source + " " + LabelSidecarInject + "=" + value + " opts out"
}
