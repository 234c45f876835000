package check

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/internal/istio"
)

// ref names an object in findings: "Kind ns/name" or "Kind name".
func ref(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + " " + ns + "/" + u.GetName()
	}
	return u.GetKind() + " " + u.GetName()
}

// group returns the API group of an object ("" for core).
func group(u *unstructured.Unstructured) string {
	return u.GroupVersionKind().Group
}

// is reports whether u is of the given group and kind, ignoring the version
// so checks keep working across API versions.
func is(u *unstructured.Unstructured, grp, kind string) bool {
	return u.GetKind() == kind && group(u) == grp
}

// podTemplatePaths maps the kinds that carry a pod template to the path of that template.
var podTemplatePaths = map[string][]string{
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

// podTemplate returns the pod template labels and spec of a workload or
// the labels and spec of a bare Pod; ok is false for other kinds or specs that
// do not decode.
func podTemplate(u *unstructured.Unstructured) (labels map[string]string, spec *corev1.PodSpec, ok bool) {
	var raw map[string]any
	if u.GetKind() == "Pod" && group(u) == "" {
		raw = u.Object
	} else {
		path, known := podTemplatePaths[u.GetKind()]
		if !known || (group(u) != "apps" && group(u) != "batch") {
			return nil, nil, false
		}
		m, found, err := unstructured.NestedMap(u.Object, path...)
		if !found || err != nil {
			return nil, nil, false
		}
		raw = m
	}
	labels, _, _ = unstructured.NestedStringMap(raw, "metadata", "labels")
	specMap, found, err := unstructured.NestedMap(raw, "spec")
	if !found || err != nil {
		return nil, nil, false
	}
	spec = &corev1.PodSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(specMap, spec); err != nil {
		return nil, nil, false
	}
	return labels, spec, true
}

// namedContainer is a container with the kind of list it came from, for messages.
type namedContainer struct {
	c    *corev1.Container
	init bool
}

// containers lists a pod spec's init and regular containers.
func containers(spec *corev1.PodSpec) []namedContainer {
	out := make([]namedContainer, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		out = append(out, namedContainer{c: &spec.InitContainers[i], init: true})
	}
	for i := range spec.Containers {
		out = append(out, namedContainer{c: &spec.Containers[i]})
	}
	return out
}

// label returns a container's description for messages.
func (n namedContainer) label() string {
	if n.init {
		return "init container " + quote(n.c.Name)
	}
	return "container " + quote(n.c.Name)
}

// quote wraps s in double quotes for messages.
func quote(s string) string {
	return `"` + s + `"`
}

// isIstioComponent reports whether an object belongs to Istio itself (istiod,
// gateways, base), which may legitimately use Istio's reserved ports.
func isIstioComponent(u *unstructured.Unstructured) bool {
	l := u.GetLabels()
	if _, ok := l[istio.LabelRev]; ok {
		return true
	}
	if _, ok := l[istio.LabelOperatorComponent]; ok {
		return true
	}
	if _, ok := l["istio"]; ok {
		return true
	}
	return l["app.kubernetes.io/part-of"] == "istio" || strings.HasPrefix(u.GetName(), "istiod")
}

// selectorMatches reports whether every key of sel is in labels with the same
// value; an empty selector matches nothing here, because checks that care
// about empty selectors report them separately.
func selectorMatches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// itoa formats an int for messages.
func itoa(i int) string {
	return strconv.Itoa(i)
}

// nestedStr reads a string field, tolerating missing fields and wrong types.
func nestedStr(obj map[string]any, fields ...string) (string, bool, error) {
	return unstructured.NestedString(obj, fields...)
}
