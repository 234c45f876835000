package demo

import (
	"sort"

	"github.com/meshroll/meshroll/internal/istio"
)

// Injector models the selectors of Istio 1.23's sidecar-injector webhooks (the revision's own
// istio-sidecar-injector-<rev> and the istio-revision-tag-<tag> ones), so that the revision a pod
// will be injected by is computed from labels the same way the API server picks a webhook, instead
// of being written down by hand next to every workload.
type Injector struct {
	// Revisions are the installed revisions; "" stands for a default (unrevisioned) install.
	Revisions []string
	// Tags maps a revision tag to the revision it points at.
	Tags map[string]string
}

// Injection is the outcome of Injector.Resolve.
type Injection struct {
	// Revision injects the pod; "" when no webhook matches.
	Revision string
	// Via names what selected it: a revision or a tag name, "" when not injected.
	Via string
	// Selector says which label matched: "namespace", "object" or "legacy" (istio-injection or
	// sidecar.istio.io/inject=true through the default revision or tag).
	Selector string
}

// webhookName is a name a revision answers to, and the revision behind it.
type webhookName struct{ name, revision string }

// names lists every name (revision or tag) that owns a set of webhooks, revisions first, each group sorted.
func (in Injector) names() []webhookName {
	var out []webhookName
	revs := append([]string(nil), in.Revisions...)
	sort.Strings(revs)
	for _, r := range revs {
		name := r
		if name == "" {
			name = istio.DefaultRevision
		}
		out = append(out, webhookName{name: name, revision: r})
	}
	tags := make([]string, 0, len(in.Tags))
	for t := range in.Tags {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	for _, t := range tags {
		out = append(out, webhookName{name: t, revision: in.Tags[t]})
	}
	return out
}

// Resolve returns which revision injects a pod carrying podLabels created in a namespace carrying
// nsLabels. It follows the chart's four webhooks per name: rev.namespace (namespace istio.io/rev,
// no istio-injection), rev.object (pod istio.io/rev, namespace unlabelled) and, for the name
// "default" only, namespace. (istio-injection=enabled) and object. (pod sidecar.istio.io/inject=true
// without istio.io/rev). A pod labelled sidecar.istio.io/inject=false is never injected.
func (in Injector) Resolve(nsLabels, podLabels map[string]string) Injection {
	if podLabels[istio.LabelSidecarInject] == "false" {
		return Injection{}
	}
	nsRev, nsHasRev := nsLabels[istio.LabelRev]
	nsInj, nsHasInj := nsLabels[istio.LabelInjection]
	podRev, podHasRev := podLabels[istio.LabelRev]
	for _, w := range in.names() {
		switch {
		case nsHasRev && !nsHasInj && nsRev == w.name:
			return Injection{Revision: w.revision, Via: w.name, Selector: "namespace"}
		case !nsHasRev && !nsHasInj && podHasRev && podRev == w.name:
			return Injection{Revision: w.revision, Via: w.name, Selector: "object"}
		case w.name != istio.DefaultRevision:
			continue
		case nsHasInj && nsInj == "enabled":
			return Injection{Revision: w.revision, Via: w.name, Selector: "legacy"}
		case !nsHasRev && !nsHasInj && !podHasRev && podLabels[istio.LabelSidecarInject] == "true":
			return Injection{Revision: w.revision, Via: w.name, Selector: "legacy"}
		}
	}
	return Injection{}
}
