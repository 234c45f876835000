package controlplane

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

// TagRequest is what an operator asks of a tag, before anything is read
// from or written to a cluster.
type TagRequest struct {
	Tag      string
	Revision string
	// Overwrite allows moving a tag that already points at another revision.
	Overwrite bool
	// Force moves the tag even when running proxies would end up beyond
	// supported skew of the target revision.
	Force bool
}

// TagPlan is the judged outcome of a TagRequest against a snapshot: where
// the tag points now, where it will point, and what moves with it.
type TagPlan struct {
	Tag      string `json:"tag"`
	Revision string `json:"revision"`
	// Version is the target revision's Istio release.
	Version string `json:"version"`
	// Previous is the revision the tag points at now ("" when it is new).
	Previous string `json:"previous,omitempty"`
	// Namespaces are the namespaces whose injection resolves via the tag:
	// their next pods are injected by Revision.
	Namespaces []string `json:"namespaces,omitempty"`
	// Workloads are the workloads whose pods' injection resolves via the
	// tag, with the skew of their running proxies against Revision.
	Workloads []TagMigration `json:"workloads,omitempty"`
}

// Moves reports whether the plan changes the revision of an existing tag.
func (p *TagPlan) Moves() bool { return p.Previous != "" && p.Previous != p.Revision }

// Unsupported returns the migrations whose running proxies would be beyond
// supported skew of the target revision.
func (p *TagPlan) Unsupported() []TagMigration {
	var out []TagMigration
	for _, m := range p.Workloads {
		if !m.Skew.Supported() {
			out = append(out, m)
		}
	}
	return out
}

// TagMigration is one workload's running proxies of one version that a
// tag move hands to another revision.
type TagMigration struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ProxyVersion is the release of the running sidecars ("" when the pods
	// run no sidecar yet).
	ProxyVersion string `json:"proxyVersion,omitempty"`
	// Pods counts the running pods with that sidecar.
	Pods int `json:"pods"`
	// Skew grades ProxyVersion against the target revision.
	Skew plan.SkewVerdict `json:"skew"`
}

// String is the one-line report of a migration, as printed by tag set.
func (m TagMigration) String() string {
	return fmt.Sprintf("%s %s/%s (%d pod(s), proxy %s): %s", m.Kind, m.Namespace, m.Name, m.Pods, m.ProxyVersion, m.Skew.Reason)
}

// ValidateTagName rejects a tag that is not a valid revision name or that
// would shadow an installed revision (its webhook would compete with the
// revision's own). The default tag may coexist with a non-revisioned
// install, as istioctl allows: setting it neutralises that injector.
func ValidateTagName(tag string, revisions []string) error {
	if err := istio.ValidateRevision(tag); err != nil {
		return fmt.Errorf("invalid tag name %q: %w", tag, err)
	}
	if tag == istio.DefaultRevision {
		return nil
	}
	for _, r := range revisions {
		if r == tag {
			return fmt.Errorf("invalid tag name %q: a revision of that name is installed; a tag must not shadow a revision", tag)
		}
	}
	return nil
}

// PlanTag judges req against snap without touching a cluster: the tag name,
// the target revision, an existing tag and --overwrite, and — for a move —
// which namespaces and workloads migrate and whether their running proxies
// stay within supported skew of the target (refused unless req.Force).
func PlanTag(snap *inventory.Snapshot, req TagRequest) (*TagPlan, error) {
	names := make([]string, 0, len(snap.Revisions))
	for _, r := range snap.Revisions {
		names = append(names, r.Name)
	}
	if err := ValidateTagName(req.Tag, names); err != nil {
		return nil, err
	}
	rev := snap.Revision(req.Revision)
	if rev == nil || rev.Version == "" {
		return nil, fmt.Errorf("failed to set tag %q: revision %q is not installed (installed: %s)", req.Tag, req.Revision, orNone(names))
	}
	target, err := plan.ParseVersion(rev.Version)
	if err != nil {
		return nil, fmt.Errorf("failed to read the version of revision %q: %w", req.Revision, err)
	}
	p := &TagPlan{Tag: req.Tag, Revision: req.Revision, Version: target.String()}
	for _, t := range snap.Tags {
		if t.Name == req.Tag {
			p.Previous = t.Revision
		}
	}
	if p.Moves() && !req.Overwrite {
		return nil, fmt.Errorf("failed to set tag %q: it points at revision %q; pass --overwrite to move it to %q", req.Tag, p.Previous, req.Revision)
	}
	p.Namespaces, p.Workloads = TagUsers(snap, req.Tag, target)
	if !p.Moves() || req.Force {
		return p, nil
	}
	if bad := p.Unsupported(); len(bad) > 0 {
		lines := make([]string, 0, len(bad))
		for _, m := range bad {
			lines = append(lines, m.String())
		}
		return nil, fmt.Errorf("failed to move tag %q from %q to %q: running proxies would be beyond supported skew (pass --force to move anyway):\n  %s",
			req.Tag, p.Previous, req.Revision, strings.Join(lines, "\n  "))
	}
	return p, nil
}

// TagUsers returns the namespaces and workloads whose injection resolves via
// tag, grading each workload's running proxies against target.
func TagUsers(snap *inventory.Snapshot, tag string, target plan.Version) ([]string, []TagMigration) {
	inj := snap.Injectors()
	// A tag that does not exist yet still selects the namespaces labelled
	// with it once created: resolve them as if it existed.
	if _, ok := inj.Tags[tag]; !ok && tag != istio.DefaultRevision {
		inj.Tags[tag] = tag
	}
	if tag == istio.DefaultRevision && inj.Default == "" {
		inj.Default = istio.DefaultRevision
	}
	var namespaces []string
	nsLabels := map[string]map[string]string{}
	for _, ns := range snap.Namespaces {
		nsLabels[ns.Name] = namespaceLabels(ns)
		got := inj.Injection(istio.InjectionTarget{Namespace: ns.Name, NamespaceLabels: nsLabels[ns.Name]})
		if got.Injected && got.Via == tag {
			namespaces = append(namespaces, ns.Name)
		}
	}
	var out []TagMigration
	for _, w := range snap.Workloads {
		pod := map[string]string{}
		if w.TemplateRev != "" {
			pod[istio.LabelRev] = w.TemplateRev
		}
		got := inj.Injection(istio.InjectionTarget{Namespace: w.Namespace, NamespaceLabels: nsLabels[w.Namespace], PodLabels: pod})
		if !got.Injected || got.Via != tag {
			continue
		}
		for _, g := range w.Proxies {
			if g.Pods == 0 {
				continue
			}
			m := TagMigration{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, ProxyVersion: g.Version, Pods: g.Pods}
			if v, err := plan.ParseVersion(g.Version); err == nil {
				m.Skew = plan.Skew(v, target)
			} else {
				m.Skew = plan.SkewVerdict{Level: plan.SkewNone, Reason: "no sidecar yet: new pods get " + target.String()}
			}
			out = append(out, m)
		}
	}
	sort.Strings(namespaces)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	return namespaces, out
}

// namespaceLabels rebuilds the injection labels a snapshot namespace carries.
func namespaceLabels(ns inventory.Namespace) map[string]string {
	l := map[string]string{}
	if ns.HasInjectionLabel {
		l[istio.LabelInjection] = ns.InjectionLabel
	}
	if ns.HasRevLabel {
		l[istio.LabelRev] = ns.RevLabel
	}
	return l
}

// TagInfo is one row of `meshroll tag list`.
type TagInfo struct {
	Tag      string `json:"tag"`
	Revision string `json:"revision"`
	Webhook  string `json:"webhook"`
	// Namespaces are the namespaces whose injection resolves via the tag.
	Namespaces []string `json:"namespaces"`
}

// ListTags lists the snapshot's tags with the namespaces using each.
func ListTags(snap *inventory.Snapshot) []TagInfo {
	out := make([]TagInfo, 0, len(snap.Tags))
	for _, t := range snap.Tags {
		info := TagInfo{Tag: t.Name, Revision: t.Revision, Webhook: t.Webhook}
		info.Namespaces, _ = TagUsers(snap, t.Name, plan.Version{})
		if info.Namespaces == nil {
			info.Namespaces = []string{}
		}
		out = append(out, info)
	}
	return out
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
