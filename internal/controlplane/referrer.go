package controlplane

import (
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// ReferrerKind classifies what keeps a revision in use.
type ReferrerKind string

// Referrer kinds, in the order remove reports them.
const (
	// ReferrerPods: a workload has pods (running or terminated) whose sidecar
	// this revision injected; deleting the revision strands their proxies.
	ReferrerPods ReferrerKind = "pods"
	// ReferrerTemplate: a workload's pod template is labelled with the
	// revision (gateways are the usual case), so its next pod needs it.
	ReferrerTemplate ReferrerKind = "template"
	// ReferrerNamespace: the namespace's injection labels resolve to the
	// revision, so its next pod needs it.
	ReferrerNamespace ReferrerKind = "namespace"
	// ReferrerTag: a revision tag's webhook points at the revision.
	ReferrerTag ReferrerKind = "tag"
	// ReferrerDefaultInjector: the default injector is the revision's.
	ReferrerDefaultInjector ReferrerKind = "default-injector"
	// ReferrerDefaultValidator: istiod-default-validator calls the revision.
	ReferrerDefaultValidator ReferrerKind = "default-validator"
)

// Referrer is one thing that keeps a revision in use, and the command that
// clears it.
type Referrer struct {
	Kind ReferrerKind `json:"kind"`
	// Object names what refers, e.g. "Job demo/backup" or "Namespace shop".
	Object string `json:"object"`
	// Reason says how it refers, in words for an operator.
	Reason string `json:"reason"`
	// Fix is one command line that clears this referrer.
	Fix string `json:"fix"`
}

func (r Referrer) String() string {
	return fmt.Sprintf("%s: %s; fix: %s", r.Object, r.Reason, r.Fix)
}

// Referrers lists everything in the snapshot that still uses rev. owned are
// the revision's own objects (its record): its istiod and, when installed
// with the revision, its gateways carry the revision but go away with it.
// It is pure so that remove's refusal is unit-tested without a cluster.
func Referrers(s *inventory.Snapshot, rev string, owned []ObjectRef) []Referrer {
	own := map[string]bool{}
	for _, o := range owned {
		own[o.Kind+"/"+o.Namespace+"/"+o.Name] = true
	}
	var out []Referrer
	var templates []Referrer
	version := ""
	if r := s.Revision(rev); r != nil {
		version = istio.ImageVersion(r.ProxyImage)
		if version == "" {
			version = r.Version
		}
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if own[w.Kind+"/"+w.Namespace+"/"+w.Name] {
			continue
		}
		if p := podsOn(w, rev, version); p != "" {
			out = append(out, Referrer{Kind: ReferrerPods, Object: w.Kind + " " + w.Namespace + "/" + w.Name,
				Reason: p, Fix: podFix(w)})
		}
		// A template counts whether or not the workload has pods: a
		// Deployment at 0 replicas or a CronJob between runs has none, and
		// its next pod would start without a sidecar once rev is gone.
		// Templates that reach rev through a namespace label, a tag or the
		// default injector are refused by those referrers below.
		if w.TemplateRev == rev && w.Namespace != istio.SystemNamespace {
			reason := fmt.Sprintf("its pod template is labelled %s=%s", istio.LabelRev, rev)
			if pods, term := w.Total(); pods+term == 0 {
				reason += ": it has no pod now, and its next one would need " + rev
			}
			templates = append(templates, Referrer{Kind: ReferrerTemplate, Object: w.Kind + " " + w.Namespace + "/" + w.Name,
				Reason: reason,
				Fix:    fmt.Sprintf("kubectl -n %s patch %s %s --type=json -p '[{\"op\":\"replace\",\"path\":\"/spec/template/metadata/labels/%s\",\"value\":\"<other-revision>\"}]'", w.Namespace, strings.ToLower(w.Kind), w.Name, "istio.io~1rev")})
		}
	}
	out = append(out, templates...)
	for _, ns := range s.Namespaces {
		inj := ns.Injection
		if !inj.Injected || inj.Revision != rev {
			continue
		}
		if !ns.HasRevLabel && !ns.HasInjectionLabel {
			continue // injected by default: reported once as the default injector
		}
		fix := fmt.Sprintf("kubectl label namespace %s %s=<other-revision> --overwrite", ns.Name, istio.LabelRev)
		if ns.HasInjectionLabel {
			fix = fmt.Sprintf("kubectl label namespace %s %s- %s=<other-revision> --overwrite", ns.Name, istio.LabelInjection, istio.LabelRev)
		}
		out = append(out, Referrer{Kind: ReferrerNamespace, Object: "Namespace " + ns.Name,
			Reason: fmt.Sprintf("new pods are injected by %s (%s)", rev, inj.Reason), Fix: fix})
	}
	defaultTag := false
	for _, t := range s.Tags {
		if t.Revision != rev {
			continue
		}
		defaultTag = defaultTag || t.Name == istio.DefaultRevision
		out = append(out, Referrer{Kind: ReferrerTag, Object: "tag " + t.Name,
			Reason: fmt.Sprintf("webhook %s points at %s", t.Webhook, rev),
			Fix:    fmt.Sprintf("meshroll tag set %s --revision <other-revision>  (or: meshroll tag remove %s)", t.Name, t.Name)})
	}
	if s.DefaultRevision == rev && !defaultTag {
		out = append(out, Referrer{Kind: ReferrerDefaultInjector, Object: "default injector",
			Reason: fmt.Sprintf("pods in unlabelled or %s=enabled namespaces are injected by %s", istio.LabelInjection, rev),
			Fix:    "meshroll tag set default --revision <other-revision>"})
	}
	for _, w := range s.Webhooks {
		if w.Name == "istiod-default-validator" && w.Revision == rev {
			out = append(out, Referrer{Kind: ReferrerDefaultValidator, Object: w.Kind + " " + w.Name,
				Reason: fmt.Sprintf("Istio config is validated by %s", rev),
				Fix:    "meshroll tag set default --revision <other-revision>"})
		}
	}
	return out
}

// podsOn describes the workload's pods injected by rev, "" when none.
// Sidecars no evidence ties to a revision count when they run rev's release
// (version): removing a revision must never guess that nothing uses it.
func podsOn(w *inventory.Workload, rev, version string) string {
	pods, term, unknown := 0, 0, 0
	for _, p := range w.Proxies {
		if p.Revision == rev {
			pods += p.Pods
			term += p.Terminated
		}
		if p.Revision == inventory.RevisionUnknown && version != "" && p.Version == version {
			unknown += p.Pods + p.Terminated
		}
	}
	if unknown > 0 && pods+term == 0 {
		return fmt.Sprintf("%d pod(s) run a %s sidecar that no evidence ties to a revision; it may be %s's", unknown, version, rev)
	}
	switch {
	case pods == 0 && term == 0:
		return ""
	case term == 0:
		return fmt.Sprintf("%d pod(s) run a sidecar injected by %s", pods, rev)
	case pods == 0:
		return fmt.Sprintf("%d completed/failed pod(s) keep a sidecar injected by %s", term, rev)
	}
	return fmt.Sprintf("%d pod(s) and %d completed/failed pod(s) run a sidecar injected by %s", pods, term, rev)
}

// podFix is the command that moves or clears a workload's pods.
func podFix(w *inventory.Workload) string {
	switch w.Kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		return fmt.Sprintf("kubectl -n %s rollout restart %s/%s  (after pointing namespace %s at another revision)", w.Namespace, strings.ToLower(w.Kind), w.Name, w.Namespace)
	case "Job":
		return fmt.Sprintf("kubectl -n %s delete job %s", w.Namespace, w.Name)
	case "CronJob":
		return fmt.Sprintf("kubectl -n %s delete pods --field-selector=status.phase!=Running,status.phase!=Pending  (finished runs of cronjob %s)", w.Namespace, w.Name)
	case "Pod":
		return fmt.Sprintf("kubectl -n %s delete pod %s", w.Namespace, w.Name)
	}
	return fmt.Sprintf("kubectl -n %s delete pods of %s %s (or restart its controller)", w.Namespace, strings.ToLower(w.Kind), w.Name)
}
