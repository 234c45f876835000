package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
)

// Executor moves single workloads between revisions: one merge-patch write
// per workload and direction, then a wait on the shared informers.
type Executor struct {
	Kube    kubernetes.Interface
	Watcher *Watcher
	// Upgrade names the MeshUpgrade doing the moves.
	Upgrade string
	// DryRun sends every write as a server-side dry run.
	DryRun bool
	// RequestTimeout bounds each API call (default 30s): a request the
	// network or an overloaded API server stalls fails and is retried by
	// the caller instead of holding a slot of the wave forever.
	RequestTimeout time.Duration
}

// request bounds one API call; its timeout is not the caller's deadline, so
// callers can tell a stalled request (retry) from their own end (stop).
func (e *Executor) request(ctx context.Context) (context.Context, context.CancelFunc) {
	d := e.RequestTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

// Result is the outcome of moving one workload.
type Result struct {
	// Wrote is false when the workload already carried the move.
	Wrote bool
	// Rollout is the final rollout verdict.
	Rollout Rollout
	// Took is the time from the write to the end of the rollout.
	Took time.Duration
}

// Move applies the forward patch (setRev != "" also sets the pod-template
// istio.io/rev label) and waits for the rollout. Rerunning it with the same
// token after a crash, or after an error whose write may have landed,
// writes nothing new and just waits: the patch is rebuilt from the object
// as it is now. A workload that is gone returns an error wrapping ErrGone;
// one a restart cannot move safely now a *NotRestartableError, before any
// write. progressTimeout bounds the time without progress (see Wait).
func (e *Executor) Move(ctx context.Context, kind, namespace, name, token, setRev string, progressTimeout time.Duration) (Result, error) {
	return e.apply(ctx, kind, namespace, name, progressTimeout, true, func(t Template) ([]byte, error) {
		return Forward(t, e.Upgrade, token, setRev)
	})
}

// Restore puts back the pod template a Move replaced and waits for the
// rollout back; it writes nothing for a workload this upgrade never moved,
// nor for one that no longer exists (nothing is left to restore).
func (e *Executor) Restore(ctx context.Context, kind, namespace, name string, progressTimeout time.Duration) (Result, error) {
	res, err := e.apply(ctx, kind, namespace, name, progressTimeout, false, func(t Template) ([]byte, error) {
		return Restore(t, e.Upgrade)
	})
	if errors.Is(err, ErrGone) {
		return res, nil
	}
	return res, err
}

func (e *Executor) apply(ctx context.Context, kind, namespace, name string, progressTimeout time.Duration, forward bool, build func(Template) ([]byte, error)) (Result, error) {
	obj, err := e.Current(ctx, kind, namespace, name)
	if err != nil {
		return Result{}, err
	}
	if why := RestartBlocker(obj); forward && why != "" {
		return Result{}, &NotRestartableError{Kind: kind, Namespace: namespace, Name: name, Reason: why}
	}
	t, gen := templateOf(obj)
	patch, err := build(t)
	if err != nil {
		return Result{}, fmt.Errorf("failed to build the patch for %s %s/%s: %w", kind, namespace, name, err)
	}
	start := time.Now()
	res := Result{}
	if patch != nil {
		gen, err = e.patch(ctx, kind, namespace, name, patch)
		if err != nil {
			return res, err
		}
		res.Wrote = true
	}
	if e.DryRun {
		return res, nil
	}
	res.Rollout, err = e.Watcher.Wait(ctx, kind, namespace, name, gen, progressTimeout, forward)
	res.Took = time.Since(start)
	return res, err
}

// Current returns the workload from the informer cache or, when the cache
// does not have it (a watch that was cut and has not caught up yet), from
// the API server: only the server can say a workload is gone.
func (e *Executor) Current(ctx context.Context, kind, namespace, name string) (runtime.Object, error) {
	if obj := e.Watcher.Get(kind, namespace, name); obj != nil {
		return obj, nil
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	var (
		obj runtime.Object
		err error
	)
	apps := e.Kube.AppsV1()
	get := metav1.GetOptions{}
	switch kind {
	case "Deployment":
		obj, err = apps.Deployments(namespace).Get(rctx, name, get)
	case "StatefulSet":
		obj, err = apps.StatefulSets(namespace).Get(rctx, name, get)
	case "DaemonSet":
		obj, err = apps.DaemonSets(namespace).Get(rctx, name, get)
	default:
		return nil, fmt.Errorf("failed to find %s %s/%s: meshroll cannot restart that kind", kind, namespace, name)
	}
	if apierrors.IsNotFound(err) {
		return nil, gone(kind, namespace, name)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get %s %s/%s: %w", kind, namespace, name, err)
	}
	return obj, nil
}

func (e *Executor) patch(ctx context.Context, kind, namespace, name string, patch []byte) (int64, error) {
	opts := metav1.PatchOptions{FieldManager: "meshroll"}
	if e.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var (
		gen int64
		err error
	)
	ctx, cancel := e.request(ctx)
	defer cancel()
	apps := e.Kube.AppsV1()
	switch kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = apps.Deployments(namespace).Patch(ctx, name, types.MergePatchType, patch, opts); err == nil {
			gen = d.Generation
		}
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = apps.StatefulSets(namespace).Patch(ctx, name, types.MergePatchType, patch, opts); err == nil {
			gen = s.Generation
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = apps.DaemonSets(namespace).Patch(ctx, name, types.MergePatchType, patch, opts); err == nil {
			gen = d.Generation
		}
	default:
		return 0, fmt.Errorf("failed to patch %s %s/%s: a restart cannot move that kind", kind, namespace, name)
	}
	if apierrors.IsNotFound(err) {
		return 0, gone(kind, namespace, name)
	}
	if err != nil {
		return 0, fmt.Errorf("failed to patch %s %s/%s: %w", kind, namespace, name, err)
	}
	return gen, nil
}

// templateOf extracts what Forward and Restore read.
func templateOf(obj runtime.Object) (Template, int64) {
	var (
		om  metav1.ObjectMeta
		tpl corev1.PodTemplateSpec
	)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		om, tpl = o.ObjectMeta, o.Spec.Template
	case *appsv1.StatefulSet:
		om, tpl = o.ObjectMeta, o.Spec.Template
	case *appsv1.DaemonSet:
		om, tpl = o.ObjectMeta, o.Spec.Template
	}
	return Template{Labels: om.Labels, Annotations: om.Annotations, TemplateLabels: tpl.Labels, TemplateAnnotations: tpl.Annotations}, om.Generation
}

// SetNamespaceRev points a namespace's istio.io/rev label at rev (one merge
// patch; none when it already does, or when the namespace is gone).
func (e *Executor) SetNamespaceRev(ctx context.Context, namespace, rev string) (bool, error) {
	ctx, cancel := e.request(ctx)
	defer cancel()
	ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Deleted during the run: nothing in it is left to inject, and its
		// workloads are gone too (skipped, not failed).
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to get namespace %q: %w", namespace, err)
	}
	if ns.Labels[istio.LabelRev] == rev {
		return false, nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, istio.LabelRev, rev)
	opts := metav1.PatchOptions{FieldManager: "meshroll"}
	if e.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := e.Kube.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, patch, opts); err != nil {
		return false, fmt.Errorf("failed to relabel namespace %q %s=%s: %w", namespace, istio.LabelRev, rev, err)
	}
	return true, nil
}

// ConfirmProxies checks that every live pod of a workload runs image in its
// istio-proxy container; a rollout can finish with pods injected by another
// revision when a label or tag changed under it.
func (e *Executor) ConfirmProxies(ctx context.Context, kind, namespace, name, image string) error {
	obj, err := e.Current(ctx, kind, namespace, name)
	if err != nil {
		return err
	}
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		sel = o.Spec.Selector
	case *appsv1.StatefulSet:
		sel = o.Spec.Selector
	case *appsv1.DaemonSet:
		sel = o.Spec.Selector
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("failed to read the selector of %s %s/%s: %w", kind, namespace, name, err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	pods, err := e.Kube.CoreV1().Pods(namespace).List(rctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return fmt.Errorf("failed to list pods of %s %s/%s: %w", kind, namespace, name, err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		got := ProxyImage(&p)
		if got != image {
			if got == "" {
				got = "no sidecar"
			}
			return fmt.Errorf("pod %s/%s of %s %s runs %s, want %s", namespace, p.Name, kind, name, got, image)
		}
	}
	return nil
}

// ProxyImage is the image of a pod's istio-proxy container (a native sidecar
// in InitContainers counts too); "" when the pod has no sidecar.
func ProxyImage(p *corev1.Pod) string {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == istio.ProxyContainer {
				return c.Image
			}
		}
	}
	return ""
}
