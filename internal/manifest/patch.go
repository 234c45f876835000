package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// PatchType says how a patch document is applied. The three are the ones
// kubectl knows, so a patch written for `kubectl patch` works here unchanged.
type PatchType string

// The patch types. Strategic merge needs the Go type of the object to know
// which lists merge by key; meshroll has it for built-in kinds only, so a
// strategic patch aimed at a custom resource (or a CRD) is applied as a JSON
// merge patch instead, which replaces lists wholesale. Write a JSON patch
// when a custom resource's list must be edited in place.
const (
	PatchJSON      PatchType = "json"
	PatchMerge     PatchType = "merge"
	PatchStrategic PatchType = "strategic"
)

// Patch is one user mutation of the rendered manifests: the mutations Istio's
// install options do not allow (the seed's "fix the injector config"). It is
// an error for a patch to match no object, because a patch that silently
// stops applying after an Istio upgrade is exactly the drift the manifests
// pipeline exists to catch.
type Patch struct {
	// Target selects the objects to patch.
	Target Selector
	// Type is json, merge or strategic.
	Type PatchType
	// Patch is the patch document as JSON: an array of operations for json,
	// an object for merge and strategic.
	Patch []byte
	// Source names where the patch came from (a file name), for errors.
	Source string
	// Entry is the patch's 1-based position in Source, for errors; 0 when
	// the patch was built in code.
	Entry int
}

// Selector picks objects by kind, name, namespace and labels. An empty field
// matches anything, so the zero Selector matches every object.
type Selector struct {
	// Kind is matched exactly (e.g. "Deployment").
	Kind string `json:"kind,omitempty"`
	// Name is a glob in path.Match syntax ("istiod-*"), so a patch survives
	// the revision suffix changing between versions.
	Name string `json:"name,omitempty"`
	// Namespace is matched exactly.
	Namespace string `json:"namespace,omitempty"`
	// LabelSelector is a Kubernetes label selector ("app=istiod,istio.io/rev").
	LabelSelector string `json:"labelSelector,omitempty"`
}

// String describes the selector for errors and logs.
func (s Selector) String() string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"kind", s.Kind}, {"name", s.Name}, {"namespace", s.Namespace}, {"labelSelector", s.LabelSelector}} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	if len(parts) == 0 {
		return "any object"
	}
	return strings.Join(parts, ",")
}

// validate checks the glob and the label selector once, so matching cannot
// fail half-way through a set.
func (s Selector) validate() error {
	if _, err := path.Match(s.Name, ""); err != nil {
		return fmt.Errorf("invalid name glob %q: %w", s.Name, err)
	}
	if _, err := labels.Parse(s.LabelSelector); err != nil {
		return fmt.Errorf("invalid label selector %q: %w", s.LabelSelector, err)
	}
	return nil
}

// Matches reports whether obj is selected. An invalid glob or label
// selector matches nothing (LoadPatches and Apply reject them first).
func (s Selector) Matches(obj *unstructured.Unstructured) bool {
	if s.Kind != "" && s.Kind != obj.GetKind() {
		return false
	}
	if s.Namespace != "" && s.Namespace != obj.GetNamespace() {
		return false
	}
	if s.Name != "" {
		if ok, err := path.Match(s.Name, obj.GetName()); err != nil || !ok {
			return false
		}
	}
	if s.LabelSelector != "" {
		sel, err := labels.Parse(s.LabelSelector)
		if err != nil || !sel.Matches(labels.Set(obj.GetLabels())) {
			return false
		}
	}
	return true
}

// name identifies the patch in errors: "patches.yaml entry 2 (kind=Deployment)".
func (p Patch) name() string {
	var b strings.Builder
	switch {
	case p.Source != "" && p.Entry > 0:
		fmt.Fprintf(&b, "%s entry %d", p.Source, p.Entry)
	case p.Source != "":
		b.WriteString(p.Source)
	case p.Entry > 0:
		fmt.Fprintf(&b, "entry %d", p.Entry)
	default:
		b.WriteString("patch")
	}
	fmt.Fprintf(&b, " (%s %s)", p.Type, p.Target)
	return b.String()
}

// validate checks the type and the shape of the document before any object
// is touched.
func (p Patch) validate() error {
	if err := p.Target.validate(); err != nil {
		return err
	}
	doc := bytes.TrimSpace(p.Patch)
	switch p.Type {
	case PatchJSON:
		if _, err := jsonpatch.DecodePatch(doc); err != nil {
			return fmt.Errorf("a json patch must be a list of operations: %w", err)
		}
	case PatchMerge, PatchStrategic:
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil || m == nil {
			return fmt.Errorf("a %s patch must be an object", p.Type)
		}
	case "":
		return fmt.Errorf("type is required (one of %s, %s, %s)", PatchJSON, PatchMerge, PatchStrategic)
	default:
		return fmt.Errorf("unknown type %q (one of %s, %s, %s)", p.Type, PatchJSON, PatchMerge, PatchStrategic)
	}
	return nil
}

// apply patches one object and returns the result; obj is not modified.
func (p Patch) apply(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	doc, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out []byte
	switch p.Type {
	case PatchJSON:
		ops, err := jsonpatch.DecodePatch(p.Patch)
		if err != nil {
			return nil, err
		}
		out, err = ops.Apply(doc)
		if err != nil {
			return nil, err
		}
	case PatchMerge:
		if out, err = jsonpatch.MergePatch(doc, p.Patch); err != nil {
			return nil, err
		}
	case PatchStrategic:
		typed, err := scheme.Scheme.New(obj.GroupVersionKind())
		if err != nil {
			// Not a built-in kind: no patch metadata, fall back to merge
			// (documented on PatchStrategic).
			if out, err = jsonpatch.MergePatch(doc, p.Patch); err != nil {
				return nil, err
			}
			break
		}
		if out, err = strategicpatch.StrategicMergePatch(doc, p.Patch, typed); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown type %q", p.Type)
	}
	res := &unstructured.Unstructured{}
	if err := res.UnmarshalJSON(out); err != nil {
		return nil, fmt.Errorf("patched object is not a valid object: %w", err)
	}
	if res.GetKind() == "" || res.GetName() == "" {
		return nil, fmt.Errorf("patched object lost its kind or name")
	}
	return res, nil
}

// patchEntry is one entry of a patch file as written by people.
type patchEntry struct {
	Target Selector        `json:"target"`
	Type   PatchType       `json:"type"`
	Patch  json.RawMessage `json:"patch"`
}

// LoadPatches reads a patch file: a YAML list whose entries are
//
//	# patches.yaml
//	- target:                   # all fields optional; empty matches any object
//	    kind: Deployment
//	    name: istiod-*          # glob
//	    namespace: istio-system
//	    labelSelector: app=istiod
//	  type: strategic           # json | merge | strategic (required)
//	  patch:                    # YAML, or a string holding YAML or JSON
//	    spec:
//	      template:
//	        spec:
//	          priorityClassName: system-cluster-critical
//
// A json patch is a list of RFC 6902 operations ({op, path, value}). Errors
// name the file and the 1-based entry, and unknown keys are errors, so a
// typo ("taget:") does not silently turn a patch into one for every object.
func LoadPatches(file string) ([]Patch, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read patch file %q: %w", file, err)
	}
	return parsePatches(file, data)
}

// parsePatches is LoadPatches without the file system.
func parsePatches(file string, data []byte) ([]Patch, error) {
	var raw []json.RawMessage
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("failed to parse patch file %q: want a YAML list of {target, type, patch}: %w", file, err)
	}
	patches := make([]Patch, 0, len(raw))
	for i, r := range raw {
		p, err := decodeEntry(r)
		if err != nil {
			return nil, fmt.Errorf("failed to load patch file %q entry %d: %w", file, i+1, err)
		}
		p.Source, p.Entry = file, i+1
		patches = append(patches, p)
	}
	return patches, nil
}

// decodeEntry turns one list entry into a validated Patch.
func decodeEntry(r json.RawMessage) (Patch, error) {
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.DisallowUnknownFields()
	var e patchEntry
	if err := dec.Decode(&e); err != nil {
		return Patch{}, err
	}
	doc := bytes.TrimSpace(e.Patch)
	if len(doc) == 0 || bytes.Equal(doc, []byte("null")) {
		return Patch{}, fmt.Errorf("patch is required")
	}
	// A string holds YAML or JSON (the "patch: |" style).
	var s string
	if json.Unmarshal(doc, &s) == nil {
		conv, err := yaml.YAMLToJSON([]byte(s))
		if err != nil {
			return Patch{}, fmt.Errorf("failed to parse patch string: %w", err)
		}
		doc = conv
	}
	p := Patch{Target: e.Target, Type: e.Type, Patch: doc}
	if err := p.validate(); err != nil {
		return Patch{}, err
	}
	return p, nil
}
