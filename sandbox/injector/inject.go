package injector

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshroll/meshroll/internal/istio"
)

// Labels and annotations Istio's injection template writes that meshroll
// itself does not read yet, so they are not in internal/istio.
const (
	labelTLSMode                 = "security.istio.io/tlsMode"
	labelCanonicalName           = "service.istio.io/canonical-name"
	labelCanonicalRevision       = "service.istio.io/canonical-revision"
	annotationProxyImage         = "sidecar.istio.io/proxyImage"
	annotationDefaultContainer   = "kubectl.kubernetes.io/default-container"
	annotationDefaultLogsContain = "kubectl.kubernetes.io/default-logs-container"
	initContainerName            = "istio-init"
	labelPodTemplateHash         = "pod-template-hash"
)

// sidecarStatus is the JSON of the sidecar.istio.io/status annotation, with
// Istio's field order, so code that parses Istio's annotation parses ours.
type sidecarStatus struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

// patchOp is one RFC 6902 operation; the injector only ever adds.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// skipReason says why pod must not be injected, or "" when it must. Like
// istiod: hostNetwork pods, pods opted out with sidecar.istio.io/inject (the
// label form is normally filtered by the webhook's objectSelector already),
// and pods that already carry a sidecar are left alone.
func skipReason(pod *corev1.Pod) string {
	switch {
	case pod.Spec.HostNetwork:
		return "hostNetwork"
	case optedOut(pod.Annotations[istio.AnnotationSidecarInject]):
		return "opted out by annotation " + istio.AnnotationSidecarInject
	case optedOut(pod.Labels[istio.LabelSidecarInject]):
		return "opted out by label " + istio.LabelSidecarInject
	case pod.Annotations[istio.AnnotationSidecarStatus] != "":
		return "already injected"
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == istio.ProxyContainer && c.Image != istio.AutoImage {
			return "already injected"
		}
	}
	return ""
}

// gatewayProxy is the index of an istio-proxy container that says image:
// auto (a gateway Deployment relying on injection), or -1.
func gatewayProxy(pod *corev1.Pod) int {
	for i, c := range pod.Spec.Containers {
		if c.Name == istio.ProxyContainer && c.Image == istio.AutoImage {
			return i
		}
	}
	return -1
}

// optedOut reads an inject flag with the spellings istiod accepts for "no".
func optedOut(v string) bool {
	switch strings.ToLower(v) {
	case "n", "no", "false", "off":
		return true
	}
	return false
}

// injectPatch is the JSONPatch that turns pod into an injected pod of
// revision rev whose proxy runs image: an istio-init init container, an
// istio-proxy container, Istio's volumes, status annotation and labels.
func injectPatch(pod *corev1.Pod, rev, image string) ([]byte, error) {
	if v := pod.Annotations[annotationProxyImage]; strings.Contains(v, "/") { // as the template: only full references
		image = v
	}
	if i := gatewayProxy(pod); i >= 0 {
		return gatewayPatch(pod, i, rev, image)
	}
	volumes := sidecarVolumes()
	status := sidecarStatus{
		InitContainers: []string{initContainerName},
		Containers:     []string{istio.ProxyContainer},
		Revision:       rev,
	}
	for _, v := range volumes {
		status.Volumes = append(status.Volumes, v.Name)
	}
	statusJSON, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("failed to encode sidecar status %q: %w", rev, err)
	}

	// Istio writes the revision as an annotation, not a label: a pod's
	// istio.io/rev label stays whatever its template said.
	labels := map[string]string{
		labelTLSMode:           firstNonEmpty(pod.Labels[labelTLSMode], "istio"),
		labelCanonicalName:     canonicalName(firstNonEmpty(pod.Labels[labelCanonicalName], pod.Labels["app.kubernetes.io/name"], pod.Labels["app"], workloadName(pod))),
		labelCanonicalRevision: firstNonEmpty(pod.Labels[labelCanonicalRevision], pod.Labels["app.kubernetes.io/version"], pod.Labels["version"], "latest"),
	}
	annotations := map[string]string{
		istio.AnnotationSidecarStatus: string(statusJSON),
		istio.LabelRev:                rev,
	}
	if len(pod.Spec.Containers) > 0 {
		first := pod.Spec.Containers[0].Name
		if pod.Annotations[annotationDefaultContainer] == "" {
			annotations[annotationDefaultContainer] = first
		}
		if pod.Annotations[annotationDefaultLogsContain] == "" {
			annotations[annotationDefaultLogsContain] = first
		}
	}

	var ops []patchOp
	ops = addMapEntries(ops, "/metadata/labels", pod.Labels, labels)
	ops = addMapEntries(ops, "/metadata/annotations", pod.Annotations, annotations)
	ops = appendItems(ops, "/spec/initContainers", len(pod.Spec.InitContainers), initContainer(image))
	ops = appendItems(ops, "/spec/containers", len(pod.Spec.Containers), proxyContainer(image))
	items := make([]any, len(volumes))
	for i := range volumes {
		items[i] = volumes[i]
	}
	ops = appendItems(ops, "/spec/volumes", len(pod.Spec.Volumes), items...)
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("failed to encode patch %q: %w", rev, err)
	}
	return patch, nil
}

// gatewayPatch is what istiod's gateway template does to a pod whose
// istio-proxy container says image: auto: it fills in the image and records
// the injection, adding no init container and no volumes.
func gatewayPatch(pod *corev1.Pod, i int, rev, image string) ([]byte, error) {
	status, err := json.Marshal(sidecarStatus{Containers: []string{istio.ProxyContainer}, Revision: rev})
	if err != nil {
		return nil, fmt.Errorf("failed to encode sidecar status %q: %w", rev, err)
	}
	ops := addMapEntries(nil, "/metadata/annotations", pod.Annotations, map[string]string{
		istio.AnnotationSidecarStatus: string(status),
		istio.LabelRev:                rev,
	})
	ops = append(ops, patchOp{Op: "replace", Path: fmt.Sprintf("/spec/containers/%d/image", i), Value: image})
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("failed to encode patch %q: %w", rev, err)
	}
	return patch, nil
}

// addMapEntries adds entries to the map at path: the whole map when the pod
// has none (a JSONPatch cannot add a key under a missing parent), otherwise
// key by key, in a stable order.
func addMapEntries(ops []patchOp, path string, existing, entries map[string]string) []patchOp {
	if len(existing) == 0 {
		return append(ops, patchOp{Op: "add", Path: path, Value: entries})
	}
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		ops = append(ops, patchOp{Op: "add", Path: path + "/" + escapePointer(k), Value: entries[k]})
	}
	return ops
}

// appendItems appends items to the list at path, creating the list when the
// pod has none.
func appendItems(ops []patchOp, path string, existing int, items ...any) []patchOp {
	if existing == 0 {
		return append(ops, patchOp{Op: "add", Path: path, Value: items})
	}
	for _, it := range items {
		ops = append(ops, patchOp{Op: "add", Path: path + "/-", Value: it})
	}
	return ops
}

// escapePointer escapes a map key for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// canonicalName keeps a name a valid label value, as Istio's template does
// (trunc 63 | trimSuffix "-").
func canonicalName(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimSuffix(s, "-")
}

// workloadName names the workload a pod belongs to, as istiod does for the
// canonical-name label: a ReplicaSet's pods are named for the Deployment (the
// ReplicaSet's name less its pod-template-hash), other controllers' pods for
// the controller, bare pods for themselves. Pods created by a controller
// arrive without a name, with only generateName.
func workloadName(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		if ref.Kind != "ReplicaSet" {
			return ref.Name
		}
		if hash := pod.Labels[labelPodTemplateHash]; hash != "" && strings.HasSuffix(ref.Name, "-"+hash) {
			return strings.TrimSuffix(ref.Name, "-"+hash)
		}
		if i := strings.LastIndex(ref.Name, "-"); i > 0 {
			return ref.Name[:i]
		}
		return ref.Name
	}
	if pod.Name != "" {
		return pod.Name
	}
	return strings.TrimSuffix(pod.GenerateName, "-")
}

// sidecarResources keeps the fake proxies cheap: the sandbox schedules
// thousands of them onto fake nodes.
func sidecarResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("10m"),
			corev1.ResourceMemory: resource.MustParse("40Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("200m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
	}
}

func initContainer(image string) corev1.Container {
	return corev1.Container{
		Name:      initContainerName,
		Image:     image,
		Args:      []string{"istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"},
		Resources: sidecarResources(),
	}
}

func proxyContainer(image string) corev1.Container {
	return corev1.Container{
		Name:  istio.ProxyContainer,
		Image: image,
		Args:  []string{"proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		},
		Ports: []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromInt32(15021)}},
			PeriodSeconds:    15,
			FailureThreshold: 4,
		},
		Resources: sidecarResources(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "workload-socket", MountPath: "/var/run/secrets/workload-spiffe-uds"},
			{Name: "credential-socket", MountPath: "/var/run/secrets/credential-uds"},
			{Name: "workload-certs", MountPath: "/var/run/secrets/workload-spiffe-credentials"},
			{Name: "istio-envoy", MountPath: "/etc/istio/proxy"},
			{Name: "istio-data", MountPath: "/var/lib/istio/data"},
			{Name: "istio-podinfo", MountPath: "/etc/istio/pod"},
			{Name: "istio-token", MountPath: "/var/run/secrets/tokens"},
			{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"},
		},
	}
}

// sidecarVolumes are the volumes Istio's template adds, in its order.
func sidecarVolumes() []corev1.Volume {
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	expiry := int64(43200)
	return []corev1.Volume{
		emptyDir("workload-socket"),
		emptyDir("credential-socket"),
		emptyDir("workload-certs"),
		{Name: "istio-envoy", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		emptyDir("istio-data"),
		{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
		}}}},
		{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "istio-ca", ExpirationSeconds: &expiry, Path: "istio-token"}},
		}}}},
		{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "istio-ca-root-cert"},
		}}},
	}
}
