package manifest

import (
	"cmp"
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The values of ObjectDiff.Change.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeChanged = "changed"
	// ChangeRenamed is an object paired across revisions by its name
	// (istiod-1-23-2 ↔ istiod-1-24-2); it may carry field changes too.
	ChangeRenamed = "renamed"
)

// DiffOptions tunes Compute.
type DiffOptions struct {
	// FromRevision and ToRevision are the revisions of the two sets. Objects
	// whose names differ only by the revision are paired, and the revision
	// is replaced in every name, label and value of the "from" side before
	// comparing, so the revision change is reported once per object (as a
	// rename) rather than as noise in every field. "" means: inferred from
	// the istio.io/rev labels when a set carries exactly one. "default" is
	// never replaced (it is too common a word).
	FromRevision, ToRevision string
	// IgnorePaths drops changes at or below these paths, written as Compute
	// prints them; "[*]" matches any list element, e.g.
	// `metadata.labels["helm.sh/chart"]` or `spec.template.spec.containers[*].image`.
	IgnorePaths []string
}

// Diff is the eyes-on difference between two sets of manifests (the seed's
// "generate the manifests of the current and the new version and look at the
// differences"): per object, the field paths that changed.
type Diff struct {
	// Summary counts objects per kind of change.
	Summary DiffSummary `json:"summary"`
	// Objects lists every object that is not unchanged, sorted by kind,
	// namespace and name.
	Objects []ObjectDiff `json:"objects"`
	// FromRevision and ToRevision are the revisions that were paired
	// (given or inferred); empty when no pairing happened.
	FromRevision string `json:"fromRevision,omitempty"`
	ToRevision   string `json:"toRevision,omitempty"`
}

// DiffSummary counts objects; each object is in exactly one bucket.
type DiffSummary struct {
	Added     int `json:"added"`
	Removed   int `json:"removed"`
	Changed   int `json:"changed"`
	Renamed   int `json:"renamed"`
	Unchanged int `json:"unchanged"`
}

// ObjectDiff is one object's change.
type ObjectDiff struct {
	// Kind, Namespace and Name identify the object on the "to" side (the
	// "from" side for removed objects).
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// FromName is the name on the "from" side of a renamed object.
	FromName string `json:"fromName,omitempty"`
	// Change is added, removed, changed or renamed.
	Change string `json:"change"`
	// Fields are the changed fields, in path order; empty for added and
	// removed objects.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one changed value. A field present on one side only has a
// nil From or To.
type FieldChange struct {
	// Path locates the value: fields joined by ".", list elements matched by
	// key as [name=discovery] (by position as [3] when the list has no key),
	// keys that are not plain words quoted as ["helm.sh/chart"], and fields
	// inside an embedded YAML/JSON string in braces: data.values{global.hub}.
	Path string `json:"path"`
	// From and To are the values (scalars, maps or lists as decoded).
	From any `json:"from,omitempty"`
	To   any `json:"to,omitempty"`
}

// Compute compares two sets of objects. It is pure: it reads the objects
// and does not modify them.
//
// It is written here rather than on a YAML diff library (homeport/dyff was
// considered) because the two things that make an Istio upgrade diff
// readable are specific: pairing objects renamed by the revision, and
// diffing the YAML/JSON held in ConfigMap strings structurally.
//
// What is not reported, because it is not a change anyone needs to review:
// map order; server-managed metadata (managedFields, resourceVersion, uid,
// creationTimestamp, generation, selfLink, the last-applied and deployment
// revision annotations) and status; the order of lists whose items have a
// key (containers, env, ports, volumes, webhooks, CRD versions...); and a
// small list of server defaults (see serverDefaults) when one side has the
// field and the other does not, which is what a set read back from a cluster
// looks like next to a rendered one.
func Compute(from, to []*unstructured.Unstructured, opts DiffOptions) Diff {
	fromRev, toRev := opts.FromRevision, opts.ToRevision
	if fromRev == "" {
		fromRev = inferRevision(from)
	}
	if toRev == "" {
		toRev = inferRevision(to)
	}
	r := newRenamer(fromRev, toRev)
	d := Diff{}
	if r.active() {
		d.FromRevision, d.ToRevision = r.from, r.to
	}

	toIdx := make(map[Key]*unstructured.Unstructured, len(to))
	var toOrder []Key
	for _, o := range to {
		k := KeyOf(o)
		if _, dup := toIdx[k]; dup {
			continue
		}
		toIdx[k] = o
		toOrder = append(toOrder, k)
	}
	seen := make(map[Key]bool, len(from))
	for _, o := range from {
		orig := KeyOf(o)
		renamed := r.object(o)
		k := KeyOf(renamed)
		if seen[k] {
			// Two "from" objects map to one name (a set holding both
			// revisions): the second cannot be paired, it goes away.
			d.add(ObjectDiff{Kind: orig.Kind, Namespace: orig.Namespace, Name: orig.Name, Change: ChangeRemoved})
			continue
		}
		seen[k] = true
		t, ok := toIdx[k]
		if !ok {
			d.add(ObjectDiff{Kind: orig.Kind, Namespace: orig.Namespace, Name: orig.Name, Change: ChangeRemoved})
			continue
		}
		w := walker{ignore: opts.IgnorePaths, kind: k.Kind}
		w.walk(clean(renamed.Object), clean(t.Object), nil)
		od := ObjectDiff{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name, Fields: w.changes}
		switch {
		case orig.Name != k.Name:
			od.FromName, od.Change = orig.Name, ChangeRenamed
		case len(w.changes) > 0:
			od.Change = ChangeChanged
		default:
			d.Summary.Unchanged++
			continue
		}
		d.add(od)
	}
	for _, k := range toOrder {
		if !seen[k] {
			d.add(ObjectDiff{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name, Change: ChangeAdded})
		}
	}
	slices.SortStableFunc(d.Objects, func(a, b ObjectDiff) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return d
}

// add records an object diff and counts it.
func (d *Diff) add(od ObjectDiff) {
	switch od.Change {
	case ChangeAdded:
		d.Summary.Added++
	case ChangeRemoved:
		d.Summary.Removed++
	case ChangeChanged:
		d.Summary.Changed++
	case ChangeRenamed:
		d.Summary.Renamed++
	}
	d.Objects = append(d.Objects, od)
}

// Changes is the number of objects that are not unchanged.
func (s DiffSummary) Changes() int { return s.Added + s.Removed + s.Changed + s.Renamed }

// clean returns a shallow view of an object without the fields the server
// manages; nested maps are copied only where something is removed.
func clean(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "status" {
			out[k] = v
		}
	}
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return out
	}
	m := make(map[string]any, len(md))
	for k, v := range md {
		switch k {
		case "managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink":
			continue
		}
		m[k] = v
	}
	if ann, ok := md["annotations"].(map[string]any); ok {
		a := make(map[string]any, len(ann))
		for k, v := range ann {
			if k != "kubectl.kubernetes.io/last-applied-configuration" && k != "deployment.kubernetes.io/revision" {
				a[k] = v
			}
		}
		if len(a) == 0 {
			delete(m, "annotations")
		} else {
			m["annotations"] = a
		}
	}
	out["metadata"] = m
	return out
}

// walker compares two decoded values and collects the changes.
type walker struct {
	ignore  []string
	kind    string
	changes []FieldChange
}

// walk compares a and b (either may be nil: absent) at path p.
func (w *walker) walk(a, b any, p fieldPath) {
	if equalValue(a, b) {
		return
	}
	switch at := a.(type) {
	case map[string]any:
		if bt, ok := b.(map[string]any); ok {
			w.walkMap(at, bt, p)
			return
		}
	case []any:
		if bt, ok := b.([]any); ok {
			w.walkList(at, bt, p)
			return
		}
	case string:
		if bt, ok := b.(string); ok && w.embedded(p) {
			ea, aok := parseEmbedded(at)
			eb, bok := parseEmbedded(bt)
			if aok && bok {
				w.walk(ea, eb, p.with(seg{typ: segEmbed}))
				return
			}
		}
	}
	w.record(p, a, b)
}

// embedded reports whether the string at p is a ConfigMap data value, the
// place Istio keeps its mesh config and injector values/config.
func (w *walker) embedded(p fieldPath) bool {
	return w.kind == "ConfigMap" && len(p) == 2 && p[0].typ == segField && p[0].s == "data"
}

func (w *walker) walkMap(a, b map[string]any, p fieldPath) {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		cp := p.with(seg{typ: segField, s: k})
		if aok != bok && isServerDefault(w.kind, cp, av, bv) {
			continue
		}
		w.walk(av, bv, cp)
	}
}

// record adds a change unless its path is ignored.
func (w *walker) record(p fieldPath, a, b any) {
	path := p.String()
	if len(w.ignore) > 0 {
		pat := p.pattern()
		for _, ig := range w.ignore {
			if underPath(path, ig) || underPath(pat, ig) {
				return
			}
		}
	}
	w.changes = append(w.changes, FieldChange{Path: path, From: a, To: b})
}

// parseEmbedded decodes a string that holds a YAML or JSON object; ok is
// false for anything else (plain text, scalars, lists).
func parseEmbedded(s string) (map[string]any, bool) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, false
	}
	var m map[string]any
	if t[0] == '{' {
		if json.Unmarshal([]byte(t), &m) == nil {
			return m, true
		}
	}
	if !strings.Contains(t, ":") {
		return nil, false
	}
	if err := yaml.Unmarshal([]byte(t), &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// equalValue is deep equality over decoded YAML/JSON that treats numbers by
// value (YAML decodes 1 as int64, JSON as float64).
func equalValue(a, b any) bool {
	switch at := a.(type) {
	case map[string]any:
		bt, ok := b.(map[string]any)
		if !ok || len(at) != len(bt) {
			return false
		}
		for k, av := range at {
			bv, ok := bt[k]
			if !ok || !equalValue(av, bv) {
				return false
			}
		}
		return true
	case []any:
		bt, ok := b.([]any)
		if !ok || len(at) != len(bt) {
			return false
		}
		for i := range at {
			if !equalValue(at[i], bt[i]) {
				return false
			}
		}
		return true
	}
	if af, ok := number(a); ok {
		bf, ok := number(b)
		return ok && af == bf
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), true
	case int:
		return float64(t), true
	case int32:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}
