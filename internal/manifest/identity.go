package manifest

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

// Key identifies an object the way the API server does: API group, kind,
// namespace and name. The version is not part of it (apps/v1 and
// apps/v1beta1 Deployments of one name are the same object), so an
// apiVersion change shows up as a field change of one object.
type Key struct {
	Group, Kind, Namespace, Name string
}

// KeyOf returns obj's identity.
func KeyOf(obj *unstructured.Unstructured) Key {
	gvk := obj.GroupVersionKind()
	return Key{Group: gvk.Group, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// String is "Kind namespace/name", or "Kind name" for cluster-scoped objects,
// the way people refer to objects in review comments.
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

// describe names an object in errors.
func describe(obj *unstructured.Unstructured) string {
	return fmt.Sprintf("%q", KeyOf(obj).String())
}

// renamer rewrites one revision name into another wherever it appears as a
// whole token: in names ("istiod-1-23-2"), labels ("istio.io/rev: 1-23-2"),
// and values ("istiod-1-23-2.istio-system.svc"). A token boundary is any
// character that is not a letter or digit, so "1-23-2" does not match inside
// "11-23-21", and image tags ("1.23.2") are left alone because Istio spells
// revisions with dashes.
type renamer struct {
	from, to string
}

// newRenamer returns a renamer, or one that does nothing when the revisions
// are equal or unsafe to replace: "default" (and "") are words that occur in
// unrelated values ("default-scheduler", "namespace: default").
func newRenamer(from, to string) renamer {
	if from == to || from == "" || to == "" || from == istio.DefaultRevision || to == istio.DefaultRevision {
		return renamer{}
	}
	return renamer{from: from, to: to}
}

// active reports whether the renamer changes anything.
func (r renamer) active() bool { return r.from != "" }

// str replaces whole-token occurrences of r.from in s.
func (r renamer) str(s string) string {
	if !r.active() || !strings.Contains(s, r.from) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, r.from)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(r.from)
		if (i == 0 || !alnum(s[i-1])) && (end == len(s) || !alnum(s[end])) {
			b.WriteString(s[:i])
			b.WriteString(r.to)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

// value returns a copy of v with every string (and map key) renamed.
func (r renamer) value(v any) any {
	switch t := v.(type) {
	case string:
		return r.str(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[r.str(k)] = r.value(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = r.value(e)
		}
		return out
	default:
		return v
	}
}

// object returns a renamed copy of obj (obj itself when nothing changes).
func (r renamer) object(obj *unstructured.Unstructured) *unstructured.Unstructured {
	if !r.active() {
		return obj
	}
	m, _ := r.value(obj.Object).(map[string]any)
	return &unstructured.Unstructured{Object: m}
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// inferRevision returns the one revision the objects are labelled with
// (istio.io/rev on object metadata), or "" when there is none or several.
// It lets a diff of two rendered directories pair revisioned objects without
// being told the revisions.
func inferRevision(objs []*unstructured.Unstructured) string {
	rev := ""
	for _, o := range objs {
		v := o.GetLabels()[istio.LabelRev]
		if v == "" {
			continue
		}
		if rev != "" && v != rev {
			return ""
		}
		rev = v
	}
	return rev
}
