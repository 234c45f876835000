package dataplane

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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
// token after a crash writes nothing and just waits.
func (e *Executor) Move(ctx context.Context, kind, namespace, name, token, setRev string, timeout time.Duration) (Result, error) {
	return e.apply(ctx, kind, namespace, name, timeout, true, func(t Template) ([]byte, error) {
		return Forward(t, e.Upgrade, token, setRev)
	})
}

// Restore puts back the pod template a Move replaced and waits for the
// rollout back; it writes nothing for a workload this upgrade never moved.
func (e *Executor) Restore(ctx context.Context, kind, namespace, name string, timeout time.Duration) (Result, error) {
	return e.apply(ctx, kind, namespace, name, timeout, false, func(t Template) ([]byte, error) {
		return Restore(t, e.Upgrade)
	})
}

func (e *Executor) apply(ctx context.Context, kind, namespace, name string, timeout time.Duration, failFast bool, build func(Template) ([]byte, error)) (Result, error) {
	obj := e.Watcher.Get(kind, namespace, name)
	if obj == nil {
		return Result{}, fmt.Errorf("failed to find %s %s/%s: it does not exist or meshroll cannot restart that kind", kind, namespace, name)
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
	res.Rollout, err = e.Watcher.Wait(ctx, kind, namespace, name, gen, timeout, failFast)
	res.Took = time.Since(start)
	return res, err
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
// patch; none when it already does).
func (e *Executor) SetNamespaceRev(ctx context.Context, namespace, rev string) (bool, error) {
	ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
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
	obj := e.Watcher.Get(kind, namespace, name)
	if obj == nil {
		return fmt.Errorf("%s %s/%s no longer exists", kind, namespace, name)
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
	pods, err := e.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
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
