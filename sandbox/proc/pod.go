package proc

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// SetPodReady writes what a kubelet writes when a container's readiness
// probe changes: the pod's Ready and ContainersReady conditions and the
// ready flag of container (every container when container is empty: one
// process speaks for the pod), when they differ. A pod that is gone,
// terminating or was replaced (another uid) is left alone.
func SetPodReady(ctx context.Context, kube kubernetes.Interface, key string, uid types.UID, container string, ready bool) error {
	ns, name, _ := strings.Cut(key, "/")
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to get pod %q: %w", key, err)
		}
		if pod.UID != uid || pod.DeletionTimestamp != nil {
			return nil
		}
		if !applyReady(&pod.Status, container, ready, metav1.Now()) {
			return nil
		}
		if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("failed to update status of pod %q: %w", key, err)
		}
		return nil
	})
}

// applyReady sets the Ready and ContainersReady conditions (adding them when
// missing) and the ready flag of container (of all when empty), and reports
// whether anything changed.
func applyReady(st *corev1.PodStatus, container string, ready bool, now metav1.Time) bool {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	changed := false
	for _, typ := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		found := false
		for i := range st.Conditions {
			c := &st.Conditions[i]
			if c.Type != typ {
				continue
			}
			found = true
			if c.Status != status {
				c.Status, c.LastTransitionTime = status, now
				changed = true
			}
		}
		if !found {
			st.Conditions = append(st.Conditions, corev1.PodCondition{Type: typ, Status: status, LastTransitionTime: now})
			changed = true
		}
	}
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		if (container == "" || cs.Name == container) && cs.Ready != ready {
			cs.Ready = ready
			changed = true
		}
	}
	return changed
}

// Backoff is the wait before the n-th restart of a crashed process: base,
// doubling, at most limit (a kubelet's CrashLoopBackOff, shorter).
func Backoff(n int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
