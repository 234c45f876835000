package sandbox

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFakeNode(t *testing.T) {
	n := fakeNode(nodeName(7))
	if n.Name != "kwok-node-7" || !isFake(n) || n.Labels["type"] != "kwok" {
		t.Errorf("fake node metadata = %+v", n.ObjectMeta)
	}
	if got := n.Status.Allocatable.Pods().Value(); got != 250 {
		t.Errorf("allocatable pods = %d, want 250", got)
	}
	if got := n.Status.Capacity.Memory().String(); got != "512Gi" {
		t.Errorf("memory = %s, want 512Gi", got)
	}
}

func TestIsReady(t *testing.T) {
	tests := []struct {
		name string
		cond []corev1.NodeCondition
		want bool
	}{
		{"no conditions", nil, false},
		{"ready", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}, true},
		{"not ready", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}, false},
		{"other condition only", []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &corev1.Node{Status: corev1.NodeStatus{Conditions: tt.cond}}
			if got := isReady(n); got != tt.want {
				t.Errorf("isReady = %v, want %v", got, tt.want)
			}
		})
	}
}
