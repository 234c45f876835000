package istiod

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and names the istiod chart gives its pods.
const (
	// LabelApp selects istiod pods: every revision's chart sets app=istiod.
	LabelApp      = "app"
	labelAppValue = "istiod"
	// containerName is the chart's pilot-discovery container.
	containerName = "discovery"
)

// Selector is the label selector of the pods the runner serves.
func Selector() string { return LabelApp + "=" + labelAppValue }

// listener is one address flag of pilot-discovery and the port the chart's
// image serves it on when the flag is not given.
type listener struct {
	flag string
	port uint16
}

// listeners are every server pilot-discovery opens: each is bound to the
// pod's own address, never to all addresses, so several revisions (and
// anything else on this host) run side by side.
func listeners() []listener {
	return []listener{
		{"httpAddr", 8080},        // readiness (/ready), debug
		{"grpcAddr", 15010},       // plaintext xDS
		{"secureGRPCAddr", 15012}, // mTLS xDS and CA
		{"httpsAddr", 15017},      // injection and validation webhooks
		{"monitoringAddr", 15014}, // metrics
	}
}

// spec is the process a pod asks for. Two equal specs are the same process:
// a running one is kept; any difference restarts it.
type spec struct {
	key     string
	uid     types.UID
	ip      netip.Addr
	version string
	sa      string
	args    []string
	env     []string
}

// equal reports whether a running process for s still serves o.
func (s spec) equal(o spec) bool {
	return s.key == o.key && s.uid == o.uid && s.ip == o.ip && s.version == o.version && s.sa == o.sa &&
		slices.Equal(s.args, o.args) && slices.Equal(s.env, o.env)
}

// lookup reads the key of a ConfigMap (secret false) or Secret in the pod's
// namespace, for env entries that name one.
type lookup func(ctx context.Context, secret bool, name, key string) (string, bool, error)

// podSpec decides what process pod asks for, or why none (a pod that is not
// running, has no address yet or is going away asks for none, with no error).
func podSpec(ctx context.Context, pod *corev1.Pod, node *corev1.Node, look lookup) (*spec, error) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return nil, nil
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		return nil, fmt.Errorf("failed to parse address of pod %q: %w", pod.Namespace+"/"+pod.Name, err)
	}
	c := container(pod)
	if c == nil {
		return nil, fmt.Errorf("failed to find container %q in pod %q", containerName, pod.Namespace+"/"+pod.Name)
	}
	version, err := imageVersion(c.Image)
	if err != nil {
		return nil, fmt.Errorf("failed to read the release of pod %q: %w", pod.Namespace+"/"+pod.Name, err)
	}
	env, err := resolveEnv(ctx, pod, c, node, look)
	if err != nil {
		return nil, err
	}
	// The image's entrypoint is pilot-discovery; a command would replace it.
	args := append(slices.Clone(c.Command[min(len(c.Command), 1):]), c.Args...)
	return &spec{
		key:     pod.Namespace + "/" + pod.Name,
		uid:     pod.UID,
		ip:      ip,
		version: version,
		sa:      pod.Spec.ServiceAccountName,
		args:    bindArgs(args, ip),
		env:     env,
	}, nil
}

// container returns the pod's pilot-discovery container.
func container(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == containerName {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// imageVersion reads the Istio release from an image reference
// (docker.io/istio/pilot:1.24.2, …:1.24.2-distroless): the tag names the
// release, which names the module version to build.
func imageVersion(image string) (string, error) {
	ref, _, _ := strings.Cut(image, "@")
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return "", fmt.Errorf("failed to read release from image %q: no tag", image)
	}
	tag := ref[i+1:]
	if v, _, found := strings.Cut(tag, "-"); found {
		tag = v
	}
	if tag == "" || strings.Count(tag, ".") != 2 {
		return "", fmt.Errorf("failed to read release from image %q: tag %q is no release", image, tag)
	}
	return tag, nil
}

// bindArgs keeps the container's arguments and adds, after them (the last
// occurrence of a flag wins), every listener bound to ip on the port the
// arguments chose (the chart passes --monitoringAddr=:15014), and ctrlz
// off, since its fixed port would collide between revisions.
func bindArgs(args []string, ip netip.Addr) []string {
	out := slices.Clone(args)
	for _, l := range listeners() {
		port := l.port
		if v, ok := flagValue(args, l.flag); ok {
			if ap, err := netip.ParseAddrPort("0.0.0.0" + v[strings.LastIndex(v, ":"):]); err == nil {
				port = ap.Port()
			}
		}
		out = append(out, "--"+l.flag+"="+netip.AddrPortFrom(ip, port).String())
	}
	return append(out, "--ctrlz_port=0")
}

// flagValue finds the last value of --name (or -name) in args, given as
// --name=v or --name v.
func flagValue(args []string, name string) (string, bool) {
	var v string
	var found bool
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		switch {
		case strings.HasPrefix(a, name+"="):
			v, found = a[len(name)+1:], true
		case a == name && i+1 < len(args):
			v, found = args[i+1], true
		}
	}
	return v, found
}

// resolveEnv computes the container's environment as the kubelet would:
// literal values, the pod's own fields, its resources (a limit that is not
// set is the node's allocatable, as on a real node; CPU is capped at this
// host's cores, since the fake node's 64 are not there), and keys of
// ConfigMaps and Secrets.
func resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, node *corev1.Node, look lookup) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		v, err := envValue(ctx, pod, c, node, e, look)
		if err != nil {
			return nil, fmt.Errorf("failed to resolve env %q of pod %q: %w", e.Name, pod.Namespace+"/"+pod.Name, err)
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

func envValue(ctx context.Context, pod *corev1.Pod, c *corev1.Container, node *corev1.Node, e corev1.EnvVar, look lookup) (string, error) {
	from := e.ValueFrom
	switch {
	case from == nil:
		return e.Value, nil
	case from.FieldRef != nil:
		return fieldValue(pod, from.FieldRef.FieldPath)
	case from.ResourceFieldRef != nil:
		return resourceValue(c, node, from.ResourceFieldRef)
	case from.ConfigMapKeyRef != nil:
		return keyValue(ctx, look, false, from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key, from.ConfigMapKeyRef.Optional)
	case from.SecretKeyRef != nil:
		return keyValue(ctx, look, true, from.SecretKeyRef.Name, from.SecretKeyRef.Key, from.SecretKeyRef.Optional)
	}
	return "", fmt.Errorf("unsupported valueFrom")
}

func keyValue(ctx context.Context, look lookup, secret bool, name, key string, optional *bool) (string, error) {
	v, found, err := look(ctx, secret, name, key)
	if err != nil {
		return "", err
	}
	if !found && (optional == nil || !*optional) {
		return "", fmt.Errorf("key %q of %q not found", key, name)
	}
	return v, nil
}

// fieldValue answers the downward API's field paths.
func fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return m[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// resourceValue answers resourceFieldRef like the kubelet: limits fall back
// to the node's allocatable, values are divided by the divisor and rounded up.
func resourceValue(c *corev1.Container, node *corev1.Node, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	rn := corev1.ResourceName(name)
	var q resource.Quantity
	var set bool
	if kind == "limits" {
		q, set = c.Resources.Limits[rn]
		if !set && node != nil {
			q, set = node.Status.Allocatable[rn]
		}
	} else {
		q, set = c.Resources.Requests[rn]
	}
	if !set {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	v := int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))
	if rn == corev1.ResourceCPU && kind == "limits" {
		v = min(v, int64(runtime.NumCPU()))
	}
	return strconv.FormatInt(max(v, 1), 10), nil
}
