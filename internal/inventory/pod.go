package inventory

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

// interner shares one copy of the strings that repeat across thousands of
// pods (namespaces, owner names, images, revisions). It belongs to one
// goroutine; it is not safe for concurrent use.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// optional is a label or annotation value that may be absent: Istio's
// selectors tell "missing" from "empty".
type optional struct {
	value string
	set   bool
}

func lookup(m map[string]string, key string) optional {
	v, ok := m[key]
	return optional{value: v, set: ok}
}

// podKey is everything about a pod that the snapshot keeps: pods that agree on
// all of it are counted together, so memory grows with the number of distinct
// (owner, injection labels, sidecar) combinations, not with the pod count.
type podKey struct {
	namespace   string
	ownerKind   string // controller kind, "" for a bare pod
	ownerName   string // controller name, or the pod's own name when bare
	podRev      optional
	injectLabel optional
	injectAnno  optional
	hostNetwork bool
	revision    string // injecting revision, "" without sidecar
	image       string // istio-proxy image, "" without sidecar
}

// podCount is a podKey's tally.
type podCount struct {
	pods, terminated int
}

// podTally folds pods into counts as they stream past.
type podTally struct {
	strings interner
	counts  map[podKey]*podCount
	total   int
}

func newPodTally() *podTally {
	return &podTally{strings: interner{}, counts: map[podKey]*podCount{}}
}

// add records one pod; it retains nothing from the pod but interned strings.
func (t *podTally) add(pod *corev1.Pod) {
	t.total++
	in := t.strings
	key := podKey{namespace: in.get(pod.Namespace), hostNetwork: pod.Spec.HostNetwork}
	key.ownerName = pod.Name
	for i := range pod.OwnerReferences { // not metav1.GetControllerOf: it copies the reference to the heap
		if ref := &pod.OwnerReferences[i]; ref.Controller != nil && *ref.Controller {
			key.ownerKind, key.ownerName = in.get(ref.Kind), in.get(ref.Name)
			break
		}
	}
	key.podRev = internOptional(in, lookup(pod.Labels, istio.LabelRev))
	key.injectLabel = internOptional(in, lookup(pod.Labels, istio.LabelSidecarInject))
	key.injectAnno = internOptional(in, lookup(pod.Annotations, istio.AnnotationSidecarInject))
	if image := proxyImage(pod); image != "" {
		key.image = in.get(image)
		key.revision = in.get(injectedRevision(pod.Annotations))
	}
	c := t.counts[key]
	if c == nil {
		c = &podCount{}
		t.counts[key] = c
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		c.terminated++
	} else {
		c.pods++
	}
}

func internOptional(in interner, o optional) optional {
	if o.set {
		o.value = in.get(o.value)
	}
	return o
}

// proxyImage finds the istio-proxy container, as a regular container or as a
// native sidecar (init container with restartPolicy Always).
func proxyImage(pod *corev1.Pod) string {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == istio.ProxyContainer {
			return pod.Spec.Containers[i].Image
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == istio.ProxyContainer {
			return pod.Spec.InitContainers[i].Image
		}
	}
	return ""
}

// injectedRevision reads which revision injected a pod: the injection
// template writes it as the istio.io/rev annotation; older injectors only
// record it in the sidecar status JSON. Without either, the pod predates
// revisions and belongs to the default install.
func injectedRevision(annotations map[string]string) string {
	if rev := annotations[istio.LabelRev]; rev != "" {
		return rev
	}
	if status := annotations[istio.AnnotationSidecarStatus]; status != "" {
		var s struct {
			Revision string `json:"revision"`
		}
		if json.Unmarshal([]byte(status), &s) == nil && s.Revision != "" {
			return s.Revision
		}
	}
	return istio.DefaultRevision
}
