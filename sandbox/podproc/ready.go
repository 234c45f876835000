package podproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The readiness prober: every probePeriod, failing after probeFailures
// misses in a row (the kubelet's default failureThreshold). The period is
// shorter than the kubelet's default 10 s so tests do not wait on it.
const (
	probePeriod   = 500 * time.Millisecond
	probeFailures = 3
	probeTimeout  = time.Second
)

// watchReady probes in's process like the kubelet runs the container's
// readinessProbe and mirrors the result in the pod's Ready condition; a
// process that exits makes its pod not Ready at once. It returns when the
// process exits, is told to stop (its pod is terminating: endpoints drop it
// on their own), or ctx ends.
func (r *Runner) watchReady(ctx context.Context, in *instance) {
	set := func(v bool) {
		if err := r.setPodReady(ctx, in.spec, v); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("failed to set pod readiness", "pod", in.spec.key, "ready", v, "err", err)
			}
			return
		}
		in.ready.Store(v)
	}
	t := time.NewTicker(probePeriod)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-in.done:
			set(false)
			return
		case <-in.stopping:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := check(ctx, in.spec.ip, in.spec.probe); err != nil {
			fails++
			if in.ready.Load() && fails >= probeFailures {
				set(false)
			}
			continue
		}
		fails = 0
		if !in.ready.Load() {
			set(true)
			r.log.Info("process ready", "pod", in.spec.key, "after", time.Since(in.started).Round(time.Millisecond))
		}
	}
}

// check runs one probe against ip; no probe passes.
func check(ctx context.Context, ip netip.Addr, p probe) error {
	if p.port == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	addr := netip.AddrPortFrom(ip, p.port).String()
	if p.path == "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("failed to connect to %q: %w", addr, err)
		}
		return c.Close()
	}
	url := "http://" + addr + p.path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("failed to build request %q: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("failed to probe %q: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("failed to probe %q: status %d", url, resp.StatusCode)
	}
	return nil
}

// setPodReady writes the pod's Ready and ContainersReady conditions and its
// containers' ready flags when they differ; a pod that is gone, terminating
// or was replaced (another UID) is left alone.
func (r *Runner) setPodReady(ctx context.Context, s spec, ready bool) error {
	ns, name := splitKey(s.key)
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
		if !applyReady(&pod.Status, ready, metav1.Now()) {
			return nil
		}
		if _, err := r.kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("failed to update status of pod %q: %w", s.key, err)
		}
		return nil
	})
}

// applyReady sets the Ready and ContainersReady conditions (adding them when
// missing) and every container's ready flag, and reports whether anything
// changed. The pod's other containers (Istio's istio-proxy) have no process
// here: the one process speaks for the pod.
func applyReady(st *corev1.PodStatus, ready bool, now metav1.Time) bool {
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
		if cs := &st.ContainerStatuses[i]; cs.Ready != ready {
			cs.Ready = ready
			changed = true
		}
	}
	return changed
}
