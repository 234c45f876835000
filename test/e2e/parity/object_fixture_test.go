package parity

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/internal/istio"
)

// objectRef names one object a tag consists of.
type objectRef struct {
	kind, namespace, name string
}

func (r objectRef) String() string {
	if r.namespace == "" {
		return r.kind + "/" + r.name
	}
	return r.kind + " " + r.namespace + "/" + r.name
}

// resources maps the kinds a tag consists of to their API resources.
func resource(t *testing.T, kind string) schema.GroupVersionResource {
	t.Helper()
	switch kind {
	case "MutatingWebhookConfiguration":
		return schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	case "ValidatingWebhookConfiguration":
		return schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
	case "Service":
		return schema.GroupVersionResource{Version: "v1", Resource: "services"}
	}
	t.Fatalf("a tag has no object of kind %q", kind)
	return schema.GroupVersionResource{}
}

// get reads one object; a missing one fails the test.
func (e *env) get(t *testing.T, ref objectRef) *unstructured.Unstructured {
	t.Helper()
	obj, err := e.dyn.Resource(resource(t, ref.kind)).Namespace(ref.namespace).Get(t.Context(), ref.name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	return obj
}

// exists reports whether an object exists.
func (e *env) exists(t *testing.T, ref objectRef) bool {
	t.Helper()
	_, err := e.dyn.Resource(resource(t, ref.kind)).Namespace(ref.namespace).Get(t.Context(), ref.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	return true
}

// tagged names every object labelled istio.io/tag=tag, sorted.
func (e *env) tagged(t *testing.T, tag string) []string {
	t.Helper()
	var names []string
	for _, ref := range []objectRef{
		{kind: "MutatingWebhookConfiguration"}, {kind: "ValidatingWebhookConfiguration"}, {kind: "Service", namespace: istio.SystemNamespace},
	} {
		list, err := e.dyn.Resource(resource(t, ref.kind)).Namespace(ref.namespace).List(t.Context(), metav1.ListOptions{LabelSelector: istio.LabelTag + "=" + tag})
		if err != nil {
			t.Fatalf("list %ss of tag %s: %v", ref.kind, tag, err)
		}
		for _, o := range list.Items {
			names = append(names, objectRef{kind: ref.kind, namespace: o.GetNamespace(), name: o.GetName()}.String())
		}
	}
	sort.Strings(names)
	return names
}

// refOf names an object.
func refOf(o *unstructured.Unstructured) objectRef {
	return objectRef{kind: o.GetKind(), namespace: o.GetNamespace(), name: o.GetName()}
}

// parseYAML splits istioctl's multi-document output into objects.
func parseYAML(t *testing.T, text string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := istio.ParseManifest("istioctl", text)
	if err != nil {
		t.Fatalf("parse istioctl output: %v\n%s", err, text)
	}
	return objs
}

// defaulted returns obj as the API server would store it, without storing
// it: a server-side dry-run create under a scratch name (the real name may
// be taken), with the name put back.
func (e *env) defaulted(t *testing.T, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	o := obj.DeepCopy()
	ns := o.GetNamespace()
	if o.GetKind() == "Service" && ns == "" {
		ns = istio.SystemNamespace
		o.SetNamespace(ns)
	}
	name := o.GetName()
	o.SetName(name + "-parity-scratch")
	out, err := e.dyn.Resource(resource(t, o.GetKind())).Namespace(ns).Create(t.Context(), o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("dry-run create of istioctl's %s: %v", refOf(obj), err)
	}
	out.SetName(name)
	return out
}

// serverFields are set by the API server on every write; they say nothing
// about what a tool wrote.
var serverFields = regexp.MustCompile(`^metadata\.(uid|resourceVersion|creationTimestamp|generation|managedFields)(\.|\[|$)|^spec\.clusterIPs?(\.|\[|$)`)

// flatten turns an object into leaf path → JSON value. List items that
// have a name are keyed by it, so a reordering is not a difference.
func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
		if len(t) == 0 {
			out[prefix] = "{}"
		}
	case []any:
		for i, e := range t {
			key := fmt.Sprint(i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					key = n
				}
			}
			flatten(fmt.Sprintf("%s[%s]", prefix, key), e, out)
		}
		if len(t) == 0 {
			out[prefix] = "[]"
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}

// fieldDiff is one field where two objects differ ("" = absent).
type fieldDiff struct {
	path, istioctl, meshroll string
}

// diffObjects compares istioctl's and meshroll's object field by field,
// leaving out what the server sets on every write.
func diffObjects(istioctl, meshroll *unstructured.Unstructured) (diffs []fieldDiff, compared int) {
	a, b := map[string]string{}, map[string]string{}
	flatten("", istioctl.Object, a)
	flatten("", meshroll.Object, b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		if serverFields.MatchString(k) || k == "status.loadBalancer" {
			continue
		}
		compared++
		if a[k] != b[k] {
			diffs = append(diffs, fieldDiff{path: k, istioctl: a[k], meshroll: b[k]})
		}
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].path < diffs[j].path })
	return diffs, compared
}

// purgeLine is how `istioctl uninstall --purge --dry-run` names each object
// it would delete.
var purgeLine = regexp.MustCompile(`Kind=([A-Za-z]+)/(.+?)\.([a-z0-9-]*) because of dry run`)

// purgeDryRun runs `istioctl uninstall --purge --dry-run` and returns the
// objects it would delete.
func purgeDryRun(t *testing.T, ctl istioctl) map[objectRef]bool {
	t.Helper()
	out, errOut, err := ctl.try(t, "uninstall", "--purge", "--dry-run", "--skip-confirmation")
	if err != nil {
		t.Fatalf("istioctl %s uninstall --purge --dry-run: %v\nstdout: %s\nstderr: %s", ctl.version, err, out, errOut)
	}
	pruned := map[objectRef]bool{}
	for _, line := range strings.Split(out+"\n"+errOut, "\n") {
		if m := purgeLine.FindStringSubmatch(line); m != nil {
			pruned[objectRef{kind: m[1], name: m[2], namespace: m[3]}] = true
		}
	}
	if len(pruned) == 0 {
		t.Fatalf("istioctl %s uninstall --purge --dry-run names nothing it would delete; its output changed?\nstdout: %s\nstderr: %s",
			ctl.version, out, errOut)
	}
	return pruned
}

// tagListRow is one row of `istioctl tag list -o json` and of
// `meshroll tag list -o json`, which share these fields.
type tagListRow struct {
	Tag        string   `json:"tag"`
	Revision   string   `json:"revision"`
	Namespaces []string `json:"namespaces"`
}

// tagLists returns tag → row as each tool lists them.
func tagLists(t *testing.T, ctl istioctl) (istioctlRows, meshrollRows map[string]tagListRow) {
	t.Helper()
	parse := func(who, text string) map[string]tagListRow {
		var rows []tagListRow
		if err := yaml.Unmarshal([]byte(text), &rows); err != nil {
			t.Fatalf("parse %s tag list: %v\n%s", who, err, text)
		}
		out := map[string]tagListRow{}
		for _, r := range rows {
			if r.Tag == "" {
				continue // istioctl also lists untagged revisions' injectors
			}
			sort.Strings(r.Namespaces)
			out[r.Tag] = r
		}
		return out
	}
	return parse("istioctl", ctl.run(t, "tag", "list", "-o", "json")), parse("meshroll", meshroll(t, "tag", "list", "-o", "json"))
}
