package podproc

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// injectedPod is a pod as Istio's grpc-agent template leaves it: the app
// container plus istio-proxy with PROXY_CONFIG.
func injectedPod() *corev1.Pod {
	grace := int64(7)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "xds", UID: "u1", Labels: map[string]string{"version": "v2"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{
				{Name: "app", Image: "meshroll/xdsapp", Args: []string{"server", "--port=8080"},
					Env: []corev1.EnvVar{{Name: "A", Value: "b"}, {Name: "ME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "VERSION", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['version']"}}}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8081)}}}},
				{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.24.2", Env: []corev1.EnvVar{
					{Name: "PROXY_CONFIG", Value: `{"discoveryAddress":"istiod-1-24-2.istio-system.svc:15012"}`},
					{Name: "ISTIO_META_CLUSTER_ID", Value: "Kubernetes"}}},
			},
		},
		Status: corev1.PodStatus{PodIP: "10.244.0.7", Phase: corev1.PodRunning},
	}
}

func TestPodSpec(t *testing.T) {
	images := map[string]string{"meshroll/xdsapp": "/bin/xdsapp"}
	s, err := podSpec(injectedPod(), images)
	if err != nil || s == nil {
		t.Fatalf("podSpec = %v, %v", s, err)
	}
	if s.binary != "/bin/xdsapp" || !slices.Equal(s.args, []string{"server", "--port=8080"}) || s.grace != 7*time.Second {
		t.Errorf("binary %q args %v grace %s", s.binary, s.args, s.grace)
	}
	for _, want := range []string{"POD_IP=10.244.0.7", "A=b", "ME=echo-1", "VERSION=v2", "POD_NAMESPACE=xds"} {
		if !slices.Contains(s.env, want) {
			t.Errorf("env %v lacks %s", s.env, want)
		}
	}
	if s.probe != (probe{port: 8081, path: "/ready"}) {
		t.Errorf("probe = %+v", s.probe)
	}
	if s.discovery != "istiod-1-24-2.istio-system.svc:15012" || s.proxy.version != "1.24.2" {
		t.Errorf("discovery %q proxy %+v", s.discovery, s.proxy)
	}

	terminating := injectedPod()
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	noIP := injectedPod()
	noIP.Status.PodIP = ""
	for name, p := range map[string]*corev1.Pod{"terminating": terminating, "no address yet": noIP} {
		if s, err := podSpec(p, images); s != nil || err != nil {
			t.Errorf("%s: podSpec = %+v, %v; want no process", name, s, err)
		}
	}
	if _, err := podSpec(injectedPod(), map[string]string{"other": "/bin/x"}); err == nil || !strings.Contains(err.Error(), "xds/echo-1") {
		t.Errorf("unknown image: err = %v, want one naming the pod", err)
	}
}

func TestBootstrapIsIstiosGRPCNode(t *testing.T) {
	s, err := podSpec(injectedPod(), map[string]string{"meshroll/xdsapp": "/bin/xdsapp"})
	if err != nil {
		t.Fatal(err)
	}
	b := bootstrapFor(*s, "10.244.0.1:15010")
	if b.Node.ID != "sidecar~10.244.0.7~echo-1.xds~xds.svc.cluster.local" {
		t.Errorf("node id = %q", b.Node.ID)
	}
	if b.Node.Metadata["GENERATOR"] != "grpc" || b.Node.Metadata["NAMESPACE"] != "xds" || b.Node.Metadata["ISTIO_VERSION"] != "1.24.2" {
		t.Errorf("metadata = %v", b.Node.Metadata)
	}
	if len(b.XDSServers) != 1 || b.XDSServers[0].ServerURI != "10.244.0.1:15010" || b.XDSServers[0].ChannelCreds[0].Type != "insecure" {
		t.Errorf("servers = %+v", b.XDSServers)
	}
}
