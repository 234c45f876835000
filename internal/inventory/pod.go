package inventory

import (
	"encoding/json"
	"strings"
	"time"

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
	revision    string // injecting revision (RevisionUnknown without evidence), "" without sidecar
	attribution string // the evidence for revision
	image       string // istio-proxy image, "" without sidecar
	imageType   istio.ImageTypeChoice
	pinned      string // sidecar.istio.io/proxyImage, when the injector honours it
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
	evid    *evidence
}

func newPodTally(e *evidence) *podTally {
	return &podTally{strings: interner{}, counts: map[podKey]*podCount{}, evid: e}
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
	if proxy := proxyContainer(pod); proxy != nil {
		key.image = in.get(proxy.Image)
		if proxy.Image != istio.AutoImage { // "auto" was never injected: no sidecar runs
			rev, why := t.evid.attribute(pod, proxy, &key)
			key.revision, key.attribution = in.get(rev), in.get(why)
			var configs []istio.ProxyConfig
			if t.evid != nil {
				configs = t.evid.proxyConfigs
			}
			it := istio.PodImageType(configs, istio.SystemNamespace, pod.Namespace, pod.Labels, pod.Annotations)
			key.imageType = istio.ImageTypeChoice{Type: in.get(it.Type), Source: in.get(it.Source)}
			key.pinned = in.get(istio.PinnedImage(pod.Annotations))
		}
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

// proxyContainer finds the istio-proxy container, as a regular container or
// as a native sidecar (init container with restartPolicy Always).
func proxyContainer(pod *corev1.Pod) *corev1.Container {
	return proxyIn(&pod.Spec)
}

func proxyIn(spec *corev1.PodSpec) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == istio.ProxyContainer {
			return &spec.Containers[i]
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == istio.ProxyContainer {
			return &spec.InitContainers[i]
		}
	}
	return nil
}

// evidence is what the pod read needs to know about the control plane to
// attribute a sidecar to a revision.
type evidence struct {
	injectors    istio.Injectors
	namespaces   map[string]map[string]string // namespace → injection labels
	proxyConfigs []istio.ProxyConfig
	// versions and injectorCreated are per revision: the release its
	// injector writes and when its injector webhook appeared.
	versions        map[string]string
	injectorCreated map[string]time.Time
	// statusRevs remembers the revision read from each distinct
	// sidecar.istio.io/status annotation: the injector writes the same
	// text into every pod of a template, so thousands of pods share a
	// handful of values, and decoding each pod's JSON was about 6% of the
	// client's CPU in a 2,000-pod status read. Bounded; used from one
	// goroutine (the fold).
	statusRevs map[string]string
}

// maxStatusRevs bounds evidence.statusRevs.
const maxStatusRevs = 1024

// attribute names the revision that injected a pod's sidecar and the
// evidence for it (see the package documentation for the order), or
// RevisionUnknown with the reason there is none.
func (e *evidence) attribute(pod *corev1.Pod, proxy *corev1.Container, k *podKey) (rev, why string) {
	if rev := pod.Annotations[istio.LabelRev]; rev != "" {
		return rev, EvidenceAnnotation
	}
	if status := pod.Annotations[istio.AnnotationSidecarStatus]; status != "" {
		if rev := e.statusRevision(status); rev != "" {
			return rev, EvidenceStatus
		}
	}
	if rev := discoveryRevision(proxy); rev != "" {
		return rev, EvidenceDiscovery
	}
	if e == nil {
		return RevisionUnknown, EvidenceNone
	}
	inj := e.injectors.Injection(injectionTarget(k, e.namespaces[pod.Namespace]))
	if !inj.Injected {
		return RevisionUnknown, EvidenceNone
	}
	created, ok := e.injectorCreated[inj.Revision]
	if ok && created.Before(pod.CreationTimestamp.Time) && e.versions[inj.Revision] != "" &&
		e.versions[inj.Revision] == istio.ImageVersion(proxy.Image) {
		return inj.Revision, EvidenceSelection
	}
	return RevisionUnknown, EvidenceNone
}

// statusRevision is the revision a sidecar.istio.io/status annotation
// names, "" when it names none or is not JSON. e may be nil.
func (e *evidence) statusRevision(status string) string {
	if e != nil {
		if rev, ok := e.statusRevs[status]; ok {
			return rev
		}
	}
	var s struct {
		Revision string `json:"revision"`
	}
	if json.Unmarshal([]byte(status), &s) != nil {
		s.Revision = ""
	}
	if e != nil && len(e.statusRevs) < maxStatusRevs {
		if e.statusRevs == nil {
			e.statusRevs = map[string]string{}
		}
		e.statusRevs[status] = s.Revision
	}
	return s.Revision
}

// discoveryRevision reads the istiod a sidecar talks to from the proxy
// config the injector writes into its environment (PROXY_CONFIG's
// discoveryAddress, else CA_ADDR): istiod-<rev>.<ns>.svc:15012 names the
// revision, a bare istiod the default install.
func discoveryRevision(proxy *corev1.Container) string {
	addr := ""
	for _, env := range proxy.Env {
		switch env.Name {
		case "PROXY_CONFIG":
			var pc struct {
				DiscoveryAddress string `json:"discoveryAddress"`
			}
			if json.Unmarshal([]byte(env.Value), &pc) == nil && pc.DiscoveryAddress != "" {
				addr = pc.DiscoveryAddress
			}
		case "CA_ADDR":
			if addr == "" {
				addr = env.Value
			}
		}
	}
	host, _, _ := strings.Cut(addr, ":")
	svc, _, _ := strings.Cut(host, ".")
	switch {
	case svc == "istiod":
		return istio.DefaultRevision
	case strings.HasPrefix(svc, "istiod-") && len(svc) > len("istiod-"):
		return strings.TrimPrefix(svc, "istiod-")
	}
	return ""
}
