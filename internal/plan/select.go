package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// This file decides which workloads a data-plane migration covers and how
// each one moves. It is pure: the snapshot is read once by the caller and the
// result is frozen into the MeshUpgrade status, so a resumed run never
// re-selects workloads that have already moved.

// Mechanisms a Move uses; the values match api/v1alpha1's Mechanism.
const (
	// MechanismPod sets the workload's pod-template istio.io/rev label.
	MechanismPod = "Pod"
	// MechanismNamespace relabels the namespace's istio.io/rev.
	MechanismNamespace = "Namespace"
	// MechanismTag moves the revision tag that the namespace or pod names.
	MechanismTag = "Tag"
	// MechanismRestart only restarts: injection already points at the
	// target (a patch upgrade of one revision, or a half-finished move).
	MechanismRestart = "Restart"
)

// Selection restricts a migration to some workloads.
type Selection struct {
	// Namespaces lists namespace names; empty means every namespace.
	Namespaces []string
	// NamespaceSelector further restricts namespaces by label; nil selects all.
	NamespaceSelector labels.Selector
	// ExcludeNamespaces are never touched.
	ExcludeNamespaces []string
	// ExcludeWorkloads are "Kind namespace/name" strings never touched.
	ExcludeWorkloads []string
	// NamespaceLabels are every namespace's full labels (the snapshot keeps
	// only injection labels); NamespaceSelector and ordering selectors match
	// them. Nil falls back to the injection labels.
	NamespaceLabels map[string]map[string]string
}

// Move is one workload of the migration and how it moves.
type Move struct {
	Candidate
	// Mechanism is one of the Mechanism* constants.
	Mechanism string `json:"mechanism"`
	// Via is the label value that selects From today: the revision, a tag,
	// or "default".
	Via string `json:"via,omitempty"`
}

// LabelMove is a namespace label or a tag the migration re-points.
type LabelMove struct {
	// Name is the namespace or the tag.
	Name string `json:"name"`
	// From and To are the label values (namespace) or revisions (tag).
	From string `json:"from"`
	To   string `json:"to"`
}

// Selected is the outcome of Select.
type Selected struct {
	// Moves are the workloads to migrate (restartable or not).
	Moves []Move
	// Namespaces are relabels of namespaces that name From directly.
	Namespaces []LabelMove
	// Tags are tags pointing at From that selected namespaces or pods use.
	Tags []LabelMove
}

// Select returns every selected workload that has a pod on from, or no pod
// at all and a pod template that from would inject (a Deployment scaled to
// zero, a CronJob between runs: its next pod would start on from, and after
// a prune without a sidecar), with the mechanism that moves it to to. A
// template-only workload moves by its label alone (namespace, tag or its
// template's istio.io/rev); a CronJob is moved by its template, never
// restarted. When to equals from it selects the pods whose
// proxy image differs from what the revision injects now (stale sidecars),
// which only need a restart. It refuses, naming every offender, when a
// namespace carries both istio-injection and istio.io/rev (Istio would ignore
// one of them silently), when from or to is not a known revision, or when the
// selection matches no workload.
func Select(s *inventory.Snapshot, from, to string, sel Selection) (Selected, error) {
	if s.Revision(to) == nil {
		return Selected{}, fmt.Errorf("target revision %q is not installed; install it first with `meshroll revision install`", to)
	}
	if from != to && s.Revision(from) == nil && !hasProxies(s, from) {
		return Selected{}, fmt.Errorf("source revision %q is neither installed nor running any proxy; pick one from `meshroll revision list`", from)
	}
	inj := s.Injectors()
	stale := from == to
	excludedNS := toSet(sel.ExcludeNamespaces)
	excludedWL := toSet(sel.ExcludeWorkloads)
	wantNS := toSet(sel.Namespaces)

	var out Selected
	var conflicts []string
	nsMoves := map[string]LabelMove{}
	tagMoves := map[string]LabelMove{}
	outside := map[string][]string{} // label key → unselected workloads on from it would move
	for i := range s.Workloads {
		w := &s.Workloads[i]
		ns := s.Namespace(w.Namespace)
		nsl := nsLabels(ns, sel.NamespaceLabels[w.Namespace])
		ref := WorkloadRef{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
		pods, onFrom := 0, false
		for _, p := range w.Proxies {
			pods += p.Pods
			// In stale-sidecar mode only pods whose image differs from what
			// their revision injects into them now (pins and image types
			// included) move; a pinned or distroless sidecar is not stale.
			if p.Pods > 0 && p.Revision == from && (!stale || (p.WantImage != "" && p.Image != p.WantImage)) {
				onFrom = true
			}
		}
		templateOnly := !onFrom && !stale && pods == 0 && templateOn(w, from)
		if !onFrom && !templateOnly && !(w.Kind == inventory.KindCronJob && !stale && templateOn(w, from)) {
			continue
		}
		mech, via, conflict := classify(ns, w, from, to, inj)
		if !namespaceSelected(nsl, w.Namespace, wantNS, excludedNS, sel.NamespaceSelector) || excludedWL[ref.String()] {
			if conflict == "" {
				if key := moveKey(mech, w.Namespace, via); key != "" {
					outside[key] = append(outside[key], ref.String())
				}
			}
			continue
		}
		if conflict != "" {
			if !slices.Contains(conflicts, conflict) {
				conflicts = append(conflicts, conflict)
			}
			continue
		}
		m := Move{Candidate: Candidate{Ref: ref, Restartable: w.Restartable, Reason: restartReason(w), Pods: pods, Labels: nsl}, Mechanism: mech, Via: via}
		if w.Kind == inventory.KindCronJob && templateOn(w, from) && mech != MechanismRestart {
			// Moving its template (or the label it resolves through) is
			// the whole move: the next run starts on to; runs in flight
			// finish on from.
			m.Restartable, m.Reason = true, ""
		}
		switch mech {
		case MechanismNamespace:
			nsMoves[w.Namespace] = LabelMove{Name: w.Namespace, From: from, To: to}
		case MechanismTag:
			tagMoves[via] = LabelMove{Name: via, From: from, To: to}
		}
		out.Moves = append(out.Moves, m)
	}
	for key, refs := range outside {
		if _, ns := nsMoves[strings.TrimPrefix(key, "ns/")]; (strings.HasPrefix(key, "ns/") && ns) || tagMoveFor(tagMoves, key) {
			slices.Sort(refs)
			conflicts = append(conflicts, fmt.Sprintf("moving %s would also move %d workload(s) outside the selection (%s); select them too, or exclude their whole namespace and tag users together",
				strings.Replace(strings.Replace(key, "ns/", "namespace ", 1), "tag/", "tag ", 1), len(refs), strings.Join(refs[:min(3, len(refs))], ", ")))
		}
	}
	if len(conflicts) > 0 {
		slices.Sort(conflicts)
		const shown = 10 // one readable line, not one per workload of a fleet
		more := ""
		if len(conflicts) > shown {
			more = fmt.Sprintf("; and %d more", len(conflicts)-shown)
			conflicts = conflicts[:shown]
		}
		return Selected{}, fmt.Errorf("cannot migrate, labels conflict: %s%s", strings.Join(conflicts, "; "), more)
	}
	if len(out.Moves) == 0 {
		return Selected{}, errors.New("the selection matches no workload running " + from + "; check --namespace/--selector, or `meshroll status --workloads`")
	}
	out.Namespaces = sortedMoves(nsMoves)
	out.Tags = sortedMoves(tagMoves)
	return out, nil
}

// classify says how a workload on from moves to to, and via which label
// value; conflict is set when its labels make the move a guess.
func classify(ns *inventory.Namespace, w *inventory.Workload, from, to string, inj istio.Injectors) (mech, via, conflict string) {
	ref := WorkloadRef{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
	switch {
	case ns != nil && ns.HasInjectionLabel && ns.InjectionLabel != "enabled":
		return "", "", fmt.Sprintf("namespace %s has istio-injection=%s but its pods run %s: a restart would remove their sidecars instead of moving them (fix the label, or --exclude-namespace %s)", ns.Name, ns.InjectionLabel, from, ns.Name)
	case ns != nil && ns.HasRevLabel && ns.HasInjectionLabel:
		return "", "", fmt.Sprintf("namespace %s has both istio-injection=%s and istio.io/rev=%s: istio-injection wins and the revision label is ignored (`kubectl label namespace %s istio.io/rev-`, or --exclude-namespace %s)", ns.Name, ns.InjectionLabel, ns.RevLabel, ns.Name, ns.Name)
	case from == to:
		return MechanismRestart, to, ""
	case ns != nil && ns.HasRevLabel:
		via = ns.RevLabel
		mech = labelMechanism(via, from, to, inj)
	case ns != nil && ns.HasInjectionLabel:
		via = istio.DefaultRevision
		mech = labelMechanism(via, from, to, inj)
	case w.TemplateRev != "":
		via = w.TemplateRev
		if mech = labelMechanism(via, from, to, inj); mech == MechanismNamespace {
			mech = MechanismPod
		}
	default:
		// Unlabelled namespace and pod: only the default injector
		// (enableNamespacesByDefault or sidecar.istio.io/inject=true).
		via = istio.DefaultRevision
		mech = labelMechanism(via, from, to, inj)
	}
	if mech == "" {
		return "", via, fmt.Sprintf("%s: its pods run %s but %s selects %q, which does not resolve to %s", ref, from, istio.LabelRev, via, from)
	}
	return mech, via, ""
}

// moveKey names the namespace relabel or tag move a mechanism needs.
func moveKey(mech, namespace, via string) string {
	switch mech {
	case MechanismNamespace:
		return "ns/" + namespace
	case MechanismTag:
		return "tag/" + via
	}
	return ""
}

func tagMoveFor(moves map[string]LabelMove, key string) bool {
	_, ok := moves[strings.TrimPrefix(key, "tag/")]
	return strings.HasPrefix(key, "tag/") && ok
}

// labelMechanism says how a workload whose injection is selected by label
// value v moves from one revision to another: v naming from itself needs a
// relabel, v naming a tag (or the default injector) that points at from needs
// the tag moved. "" means v does not resolve to from.
func labelMechanism(v, from, to string, inj istio.Injectors) string {
	rev, ok := inj.Resolve(v)
	switch {
	case v == from:
		return MechanismNamespace
	case ok && rev == to:
		return MechanismRestart
	case ok && rev == from && v != from:
		return MechanismTag
	}
	return ""
}

func namespaceSelected(nsl map[string]string, name string, want, excluded map[string]bool, sel labels.Selector) bool {
	if excluded[name] || (len(want) > 0 && !want[name]) {
		return false
	}
	if sel != nil && !sel.Empty() {
		return sel.Matches(labels.Set(nsl))
	}
	return true
}

// nsLabels returns the namespace's full labels when the caller read them,
// else the injection labels the snapshot keeps plus the name: what ordering
// selectors and namespace selectors match on.
func nsLabels(ns *inventory.Namespace, full map[string]string) map[string]string {
	if full != nil {
		return full
	}
	if ns == nil {
		return nil
	}
	l := map[string]string{"kubernetes.io/metadata.name": ns.Name}
	if ns.HasRevLabel {
		l[istio.LabelRev] = ns.RevLabel
	}
	if ns.HasInjectionLabel {
		l[istio.LabelInjection] = ns.InjectionLabel
	}
	return l
}

func restartReason(w *inventory.Workload) string {
	if w.Restartable {
		return ""
	}
	return w.RestartReason
}

// templateOn reports whether a pod created from the workload's template now
// would be injected by rev (a template injected by hand names its own image
// and is not moved by injection).
func templateOn(w *inventory.Workload, rev string) bool {
	t := w.Template
	return t != nil && t.Injection.Injected && t.Injection.Revision == rev && (t.ProxyImage == "" || t.ProxyImage == istio.AutoImage)
}

func hasProxies(s *inventory.Snapshot, rev string) bool {
	for _, w := range s.Workloads {
		for _, p := range w.Proxies {
			if p.Revision == rev && p.Pods > 0 {
				return true
			}
		}
	}
	return false
}

func toSet(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, i := range items {
		m[i] = true
	}
	return m
}

func sortedMoves(m map[string]LabelMove) []LabelMove {
	out := make([]LabelMove, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b LabelMove) int { return strings.Compare(a.Name, b.Name) })
	return out
}
