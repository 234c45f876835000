package podproc

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Label marks the pods the runner serves; kwok's stages leave them not Ready.
const (
	Label      = "sandbox.meshroll.io/process"
	labelValue = "true"
)

// Selector is the label selector of the pods the runner serves.
func Selector() string { return Label + "=" + labelValue }

// defaultGrace is the kubelet's default terminationGracePeriodSeconds.
const defaultGrace = 30 * time.Second

// probe is the readiness check of a container: an HTTP GET of path, or a
// TCP connect when path is empty; port 0 means no probe (ready once started).
type probe struct {
	port uint16
	path string
}

// spec is the process a pod asks for. Two equal specs are the same process:
// a running one is kept; any difference restarts it.
type spec struct {
	key       string
	uid       types.UID
	ip        netip.Addr
	container string
	binary    string
	args      []string
	env       []string
	grace     time.Duration
	probe     probe
	// discovery is the istiod address Istio's injector gave the pod
	// (PROXY_CONFIG discoveryAddress), empty when it has no sidecar.
	discovery string
	// proxy is what the pod's xDS node identity needs from its istio-proxy
	// container.
	proxy proxyMeta
}

func (s spec) equal(o spec) bool {
	return s.key == o.key && s.uid == o.uid && s.ip == o.ip && s.container == o.container &&
		s.binary == o.binary && slices.Equal(s.args, o.args) && slices.Equal(s.env, o.env) &&
		s.probe == o.probe && s.discovery == o.discovery && s.proxy == o.proxy
}

// podSpec is the process pod asks for, nil while it should run none (not
// scheduled yet, no address yet, terminating, finished). A pod whose
// containers name no known image is an error the runner reports.
func podSpec(pod *corev1.Pod, images map[string]string) (*spec, error) {
	key := pod.Namespace + "/" + pod.Name
	if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, nil
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		return nil, fmt.Errorf("failed to parse address %q of pod %q: %w", pod.Status.PodIP, key, err)
	}
	s := &spec{key: key, uid: pod.UID, ip: ip, grace: defaultGrace}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		s.grace = time.Duration(*g) * time.Second
	}
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if bin, ok := images[pod.Spec.Containers[i].Image]; ok {
			c, s.binary = &pod.Spec.Containers[i], bin
			break
		}
	}
	if c == nil {
		return nil, fmt.Errorf("failed to find a container to run in pod %q: no image of it is one of %d known images (Options.Images)", key, len(images))
	}
	s.container = c.Name
	s.args = append(slices.Clone(c.Command), c.Args...)
	s.env = containerEnv(pod, c)
	s.probe = readiness(c)
	for i := range pod.Spec.Containers {
		if pc := &pod.Spec.Containers[i]; pc.Name == proxyContainer {
			if s.discovery, s.proxy, err = proxyOf(pod, pc); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// containerEnv is c's environment as a kubelet would give it: plain values,
// the downward API fields a process needs to know its pod, and POD_NAME,
// POD_NAMESPACE and POD_IP always (a bound address needs the pod's IP).
// ConfigMap and Secret references are not resolved: no process run here
// needs them.
func containerEnv(pod *corev1.Pod, c *corev1.Container) []string {
	env := []string{"POD_NAME=" + pod.Name, "POD_NAMESPACE=" + pod.Namespace, "POD_IP=" + pod.Status.PodIP}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			if v, ok := field(pod, e.ValueFrom.FieldRef.FieldPath); ok {
				env = append(env, e.Name+"="+v)
			}
		}
	}
	return env
}

// field reads a downward-API field path of pod.
func field(pod *corev1.Pod, path string) (string, bool) {
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok {
			v, ok := m[strings.TrimSuffix(key, "']")]
			return v, ok
		}
	}
	switch path {
	case "metadata.name":
		return pod.Name, true
	case "metadata.namespace":
		return pod.Namespace, true
	case "metadata.uid":
		return string(pod.UID), true
	case "status.podIP":
		return pod.Status.PodIP, true
	case "status.hostIP":
		return pod.Status.HostIP, true
	case "spec.nodeName":
		return pod.Spec.NodeName, true
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, true
	}
	return "", false
}

// readiness is c's readinessProbe as the runner can run it: httpGet or
// tcpSocket with a numeric port.
func readiness(c *corev1.Container) probe {
	p := c.ReadinessProbe
	switch {
	case p == nil:
		return probe{}
	case p.HTTPGet != nil && p.HTTPGet.Port.IntValue() > 0:
		path := p.HTTPGet.Path
		if path == "" {
			path = "/"
		}
		return probe{port: uint16(p.HTTPGet.Port.IntValue()), path: path}
	case p.TCPSocket != nil && p.TCPSocket.Port.IntValue() > 0:
		return probe{port: uint16(p.TCPSocket.Port.IntValue())}
	}
	return probe{}
}
