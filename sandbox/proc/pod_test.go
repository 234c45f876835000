package proc

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyReady(t *testing.T) {
	for _, tc := range []struct {
		container string
		want      []bool // ready flags of discovery, istio-proxy
	}{
		{"discovery", []bool{true, false}}, // istiod: only its container follows its probe
		{"", []bool{true, true}},           // a workload: the one process speaks for the pod
	} {
		now := metav1.Now()
		st := corev1.PodStatus{
			Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "discovery"}, {Name: "istio-proxy"}},
		}
		if !applyReady(&st, tc.container, true, now) {
			t.Fatalf("container %q: no change reported", tc.container)
		}
		got := map[corev1.PodConditionType]corev1.ConditionStatus{}
		for _, c := range st.Conditions {
			got[c.Type] = c.Status
		}
		if got[corev1.PodReady] != corev1.ConditionTrue || got[corev1.ContainersReady] != corev1.ConditionTrue || got[corev1.PodInitialized] != corev1.ConditionTrue {
			t.Errorf("container %q: conditions = %v", tc.container, got)
		}
		if st.ContainerStatuses[0].Ready != tc.want[0] || st.ContainerStatuses[1].Ready != tc.want[1] {
			t.Errorf("container %q: container statuses = %+v", tc.container, st.ContainerStatuses)
		}
		if applyReady(&st, tc.container, true, now) {
			t.Errorf("container %q: a second identical write reported a change", tc.container)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 50: time.Minute} {
		if got := Backoff(n, time.Second, time.Minute); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}
