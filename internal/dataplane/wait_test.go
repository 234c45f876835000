package dataplane

import (
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// TestDefect5ProgressDeadline pins issue 9 defect 5's fixed timeout: a
// rollout that keeps making progress is never failed by the bound, however
// long it takes in all; one that stalls fails after the window.
func TestDefect5ProgressDeadline(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "n", Generation: 2},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To[int32](6)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 6, AvailableReplicas: 6}}
	kube := fake.NewClientset(d)
	w, err := NewWatcher(t.Context(), kube)
	if err != nil {
		t.Fatal(err)
	}
	const window = 300 * time.Millisecond
	go func() {
		// Six replicas, one every 150 ms: 900 ms in all, three windows.
		for i := int32(1); i <= 6; i++ {
			time.Sleep(150 * time.Millisecond)
			c := d.DeepCopy()
			c.Status.UpdatedReplicas, c.Status.Replicas = i, 6+1
			if i == 6 {
				c.Status.Replicas = 6
			}
			if _, err := kube.AppsV1().Deployments("n").UpdateStatus(t.Context(), c, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
			}
		}
	}()
	start := time.Now()
	r, err := w.Wait(t.Context(), "Deployment", "n", "big", 2, window, true)
	if err != nil || !r.Done {
		t.Fatalf("a rollout that kept progressing for %s failed with a %s window: %v (%+v)", time.Since(start), window, err, r)
	}
	if took := time.Since(start); took < 3*window {
		t.Errorf("rollout took %s, want ≥ %s for the test to mean anything", took, 3*window)
	}

	stalled := d.DeepCopy()
	stalled.Name, stalled.Status.UpdatedReplicas = "stalled", 2
	if _, err := kube.AppsV1().Deployments("n").Create(t.Context(), stalled, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = w.Wait(t.Context(), "Deployment", "n", "stalled", 2, window, true)
	if err == nil || !strings.Contains(err.Error(), "made no progress for 300ms") || time.Since(start) > 5*window {
		t.Errorf("stalled rollout: %v after %s; want no progress for 300ms", err, time.Since(start))
	}

	// Deleted by its owner while waited on: gone, not failed.
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = kube.AppsV1().Deployments("n").Delete(t.Context(), "stalled", metav1.DeleteOptions{})
	}()
	if _, err := w.Wait(t.Context(), "Deployment", "n", "stalled", 2, time.Minute, true); !errors.Is(err, ErrGone) {
		t.Errorf("deleted while waited on: %v, want ErrGone", err)
	}
}

func TestProgressWindow(t *testing.T) {
	d := &appsv1.Deployment{}
	if got := ProgressWindow(d); got != 630*time.Second {
		t.Errorf("Deployment default: %s, want 10m30s", got)
	}
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](60)
	if got := ProgressWindow(d); got != 90*time.Second {
		t.Errorf("Deployment with 60s: %s, want 1m30s", got)
	}
	if got := ProgressWindow(&appsv1.StatefulSet{}); got != 10*time.Minute {
		t.Errorf("StatefulSet: %s, want 10m", got)
	}
}

// TestDefect5RestartBlocker: the workloads a restart cannot move safely,
// checked again at the moment of the write.
func TestDefect5RestartBlocker(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want string
	}{
		{"deployment", &appsv1.Deployment{}, ""},
		{"paused deployment", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Paused: true}}, "paused"},
		{"statefulset", &appsv1.StatefulSet{}, ""},
		{"statefulset partition 0", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)}}}}, ""},
		{"partitioned statefulset", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](3)}}}}, "partition 3"},
		{"OnDelete statefulset", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}}, "OnDelete"},
		{"daemonset", &appsv1.DaemonSet{}, ""},
		{"OnDelete daemonset", &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}}}, "OnDelete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RestartBlocker(tt.obj)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("RestartBlocker = %q, want %q", got, tt.want)
			}
		})
	}
}
