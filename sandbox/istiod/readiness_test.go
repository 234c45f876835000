package istiod

import (
	"time"

	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyReady(t *testing.T) {
	now := metav1.Now()
	st := corev1.PodStatus{
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "discovery"}, {Name: "other"}},
	}
	if !applyReady(&st, corev1.ConditionTrue, now) {
		t.Fatal("no change reported")
	}
	got := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range st.Conditions {
		got[c.Type] = c.Status
	}
	if got[corev1.PodReady] != corev1.ConditionTrue || got[corev1.ContainersReady] != corev1.ConditionTrue || got[corev1.PodInitialized] != corev1.ConditionTrue {
		t.Errorf("conditions = %v", got)
	}
	if !st.ContainerStatuses[0].Ready || st.ContainerStatuses[1].Ready {
		t.Errorf("container statuses = %+v: only istiod's container follows its probe", st.ContainerStatuses)
	}
	if applyReady(&st, corev1.ConditionTrue, now) {
		t.Error("a second identical write reported a change")
	}
}

func TestCrashBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 50: time.Minute} {
		if got := crashBackoff(n); got != want {
			t.Errorf("crashBackoff(%d) = %s, want %s", n, got, want)
		}
	}
}
