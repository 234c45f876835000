package istiod

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestImageVersion(t *testing.T) {
	for image, want := range map[string]string{
		"docker.io/istio/pilot:1.24.2":                  "1.24.2",
		"docker.io/istio/pilot:1.24.2-distroless":       "1.24.2",
		"localhost:5000/istio/pilot:1.23.2@sha256:abcd": "1.23.2",
		"localhost:5000/istio/pilot":                    "",
		"docker.io/istio/pilot:latest":                  "",
	} {
		got, err := imageVersion(image)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("imageVersion(%q) = %q, %v; want %q", image, got, err, want)
		}
	}
}

func TestBindArgs(t *testing.T) {
	ip := netip.MustParseAddr("10.244.64.3")
	chart := []string{"discovery", "--monitoringAddr=:15014", "--log_output_level=default:info", "--domain", "cluster.local", "--grpcAddr", ":9999"}
	got := bindArgs(chart, ip)
	if !slices.Equal(got[:len(chart)], chart) {
		t.Errorf("chart arguments changed: %v", got)
	}
	added := got[len(chart):]
	want := []string{
		"--httpAddr=10.244.64.3:8080",
		"--grpcAddr=10.244.64.3:9999", // the port the pod chose
		"--secureGRPCAddr=10.244.64.3:15012",
		"--httpsAddr=10.244.64.3:15017",
		"--monitoringAddr=10.244.64.3:15014",
		"--ctrlz_port=0",
	}
	if !slices.Equal(added, want) {
		t.Errorf("added %v, want %v", added, want)
	}
}

func TestFlagValue(t *testing.T) {
	args := []string{"--a=1", "-b", "2", "--a", "3", "--c"}
	if v, ok := flagValue(args, "a"); !ok || v != "3" {
		t.Errorf("a = %q, %t; want the last value 3", v, ok)
	}
	if v, ok := flagValue(args, "b"); !ok || v != "2" {
		t.Errorf("b = %q, %t", v, ok)
	}
	if _, ok := flagValue(args, "c"); ok {
		t.Error("c has no value")
	}
}

// chartPod is an istiod pod as the 1.24 chart renders it and kwok runs it.
func chartPod() *corev1.Pod {
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-1-24-2-abc", Namespace: "istio-system", UID: "u1",
			Labels: map[string]string{"app": "istiod", "istio.io/rev": "1-24-2"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "istiod-1-24-2",
			NodeName:           "kwok-node-0",
			Containers: []corev1.Container{{
				Name:  "discovery",
				Image: "docker.io/istio/pilot:1.24.2",
				Args:  []string{"discovery", "--monitoringAddr=:15014"},
				Env: []corev1.EnvVar{
					{Name: "REVISION", Value: "1-24-2"},
					{Name: "POD_NAME", ValueFrom: field("metadata.name")},
					{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
					{Name: "SERVICE_ACCOUNT", ValueFrom: field("spec.serviceAccountName")},
					{Name: "REV_LABEL", ValueFrom: field("metadata.labels['istio.io/rev']")},
					{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
					{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1")}}},
					{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "k"}}},
					{Name: "MISSING_OK", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr.To(true)}}},
				},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.64.0"},
	}
}

func fakeLookup(_ context.Context, secret bool, name, key string) (string, bool, error) {
	if !secret && name == "cm" && key == "k" {
		return "v", true, nil
	}
	return "", false, nil
}

func TestPodSpec(t *testing.T) {
	node := &corev1.Node{Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"),
	}}}
	s, err := podSpec(t.Context(), chartPod(), node, fakeLookup)
	if err != nil || s == nil {
		t.Fatalf("podSpec = %v, %v", s, err)
	}
	if s.key != "istio-system/istiod-1-24-2-abc" || s.version != "1.24.2" || s.ip.String() != "10.244.64.0" || s.sa != "istiod-1-24-2" {
		t.Errorf("spec = %+v", s)
	}
	want := []string{
		"REVISION=1-24-2",
		"POD_NAME=istiod-1-24-2-abc",
		"POD_NAMESPACE=istio-system",
		"SERVICE_ACCOUNT=istiod-1-24-2",
		"REV_LABEL=1-24-2",
		"GOMEMLIMIT=549755813888",                      // the node's allocatable, as the kubelet gives it
		"GOMAXPROCS=" + strconv.Itoa(runtime.NumCPU()), // capped: the fake node's 64 cores are not here
		"FROM_CM=v",
		"MISSING_OK=",
	}
	if !slices.Equal(s.env, want) {
		t.Errorf("env = %v\nwant  %v", s.env, want)
	}
	again, _ := podSpec(t.Context(), chartPod(), node, fakeLookup)
	if !s.equal(*again) {
		t.Error("the same pod asks for another process")
	}
	moved := chartPod()
	moved.Status.PodIP = "10.244.64.9"
	if m, _ := podSpec(t.Context(), moved, node, fakeLookup); s.equal(*m) {
		t.Error("a pod that changed address keeps its process")
	}
}

func TestPodSpecNone(t *testing.T) {
	for name, mutate := range map[string]func(*corev1.Pod){
		"pending":     func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending },
		"no address":  func(p *corev1.Pod) { p.Status.PodIP = "" },
		"terminating": func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} },
	} {
		p := chartPod()
		mutate(p)
		if s, err := podSpec(t.Context(), p, nil, fakeLookup); s != nil || err != nil {
			t.Errorf("%s: podSpec = %+v, %v; want none", name, s, err)
		}
	}
	p := chartPod()
	p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}})
	if _, err := podSpec(t.Context(), p, nil, fakeLookup); err == nil {
		t.Error("a required key that is missing: want an error")
	}
}
