package istiod

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The readiness prober, like the kubelet's: every probePeriod, failing
// after probeFailures misses in a row (the chart's probe has the default
// failureThreshold of 3).
const (
	probePeriod   = time.Second
	probeFailures = 3
)

// watchReady probes in's istiod like the kubelet runs the pod's
// readinessProbe and mirrors the result in the pod's Ready condition:
// kwok starts istiod pods not Ready in real-istiod mode, so a Deployment is
// available, and the istiod Service has a ready endpoint that the API server
// calls webhooks on, only once istiod really serves. A process that exits
// makes its pod not Ready at once. It returns when the process has exited or
// ctx ends (a runner that stops leaves its pods as they are, like a kubelet
// that dies).
func (r *Runner) watchReady(ctx context.Context, in *instance) {
	ready := true // unknown: the first set(false) writes if the pod says otherwise
	set := func(v bool) {
		if err := r.setPodReady(ctx, in.spec, v); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("failed to set pod readiness", "pod", in.spec.key, "ready", v, "err", err)
			}
			return
		}
		ready = v
	}
	set(false)
	t := time.NewTicker(probePeriod)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-in.done:
			set(false)
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := Ready(ctx, in.spec.ip); err != nil {
			fails++
			if ready && fails >= probeFailures {
				set(false)
			}
			continue
		}
		fails = 0
		if !ready {
			set(true)
			r.log.Info("istiod ready", "pod", in.spec.key, "after", time.Since(in.started).Round(time.Millisecond))
		}
	}
}

// setPodReady writes the pod's Ready and ContainersReady conditions and its
// istiod container's ready flag, when they differ; a pod that is gone or was
// replaced (another UID) is left alone.
func (r *Runner) setPodReady(ctx context.Context, s spec, ready bool) error {
	ns, name := splitKey(s.key)
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := r.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to get pod %q: %w", s.key, err)
		}
		if pod.UID != s.uid || pod.DeletionTimestamp != nil {
			return nil
		}
		if !applyReady(&pod.Status, status, metav1.Now()) {
			return nil
		}
		if _, err := r.kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("failed to update status of pod %q: %w", s.key, err)
		}
		return nil
	})
}

// applyReady sets the Ready and ContainersReady conditions (adding them when
// missing) and the istiod container's ready flag, and reports whether
// anything changed.
func applyReady(st *corev1.PodStatus, status corev1.ConditionStatus, now metav1.Time) bool {
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
		if cs.Name == containerName && cs.Ready != (status == corev1.ConditionTrue) {
			cs.Ready = status == corev1.ConditionTrue
			changed = true
		}
	}
	return changed
}
