package dataplane

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watcher keeps one informer per workload kind so that waiting for hundreds
// of rollouts at once costs three watches, not one poll loop per workload.
type Watcher struct {
	kube    kubernetes.Interface
	factory informers.SharedInformerFactory
	deploy  cache.SharedIndexInformer
	sts     cache.SharedIndexInformer
	ds      cache.SharedIndexInformer

	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

// NewWatcher starts informers for Deployments, StatefulSets and DaemonSets
// and waits for their first list; stop them by cancelling ctx.
func NewWatcher(ctx context.Context, kube kubernetes.Interface) (*Watcher, error) {
	f := informers.NewSharedInformerFactory(kube, 0)
	w := &Watcher{
		kube:    kube,
		factory: f,
		deploy:  f.Apps().V1().Deployments().Informer(),
		sts:     f.Apps().V1().StatefulSets().Informer(),
		ds:      f.Apps().V1().DaemonSets().Informer(),
		waiters: map[string][]chan struct{}{},
	}
	for kind, inf := range map[string]cache.SharedIndexInformer{"Deployment": w.deploy, "StatefulSet": w.sts, "DaemonSet": w.ds} {
		if _, err := inf.AddEventHandler(w.handler(kind)); err != nil {
			return nil, fmt.Errorf("failed to watch %ss: %w", kind, err)
		}
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("failed to list %v: %w", typ, context.Cause(ctx))
		}
	}
	return w, nil
}

func (w *Watcher) handler(kind string) cache.ResourceEventHandler {
	notify := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		key, err := cache.MetaNamespaceKeyFunc(obj)
		if err != nil {
			return
		}
		w.mu.Lock()
		chans := w.waiters[kind+" "+key]
		delete(w.waiters, kind+" "+key)
		w.mu.Unlock()
		for _, c := range chans {
			close(c)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, n any) { notify(n) },
		DeleteFunc: notify,
	}
}

// Get returns the cached object of a workload (nil when it does not exist or
// the kind is not watched).
func (w *Watcher) Get(kind, namespace, name string) runtime.Object {
	inf := w.informer(kind)
	if inf == nil {
		return nil
	}
	obj, ok, err := inf.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	return obj.(runtime.Object)
}

func (w *Watcher) informer(kind string) cache.SharedIndexInformer {
	switch kind {
	case "Deployment":
		return w.deploy
	case "StatefulSet":
		return w.sts
	case "DaemonSet":
		return w.ds
	}
	return nil
}

// changed returns a channel closed at the next event for the workload.
func (w *Watcher) changed(kind, namespace, name string) <-chan struct{} {
	c := make(chan struct{})
	key := kind + " " + namespace + "/" + name
	w.mu.Lock()
	w.waiters[key] = append(w.waiters[key], c)
	w.mu.Unlock()
	return c
}

// Wait blocks until the workload's rollout is done (nil), failed, makes no
// progress for progressTimeout, or ctx ends. A deadline on progress (any
// change in how many replicas are updated, ready or available) instead of on
// the whole rollout lets a workload with many replicas take as long as it
// keeps moving, as the Deployment controller's own progressDeadlineSeconds
// does; progressTimeout 0 takes the workload's own deadline (ProgressWindow).
// minGeneration guards against judging the cached object from before the
// caller's own write. With failFast false a controller-reported failure does
// not end the wait: after a restore to the previous template the old failure
// condition lingers until the rollout back completes. A workload deleted
// meanwhile ends the wait with an error wrapping ErrGone.
func (w *Watcher) Wait(ctx context.Context, kind, namespace, name string, minGeneration int64, progressTimeout time.Duration, failFast bool) (Rollout, error) {
	// Conditions carry whole seconds: anything stamped before the second of
	// the caller's write predates it.
	since := time.Now().Truncate(time.Second)
	window := progressTimeout
	var deadline *time.Timer
	defer func() {
		if deadline != nil {
			deadline.Stop()
		}
	}()
	last := Rollout{Message: "not observed yet"}
	seen, unseen := false, 0
	for {
		ch := w.changed(kind, namespace, name)
		obj := w.Get(kind, namespace, name)
		if obj == nil && (seen || w.deleted(ctx, kind, namespace, name)) {
			// The informer delivered its deletion, or the server says so.
			return last, gone(kind, namespace, name)
		}
		if obj == nil {
			// Not cached yet: the caller read it from the server while a
			// cut watch was catching up. Look again shortly.
			select {
			case <-ch:
			case <-time.After(time.Second):
			case <-ctx.Done():
				return last, context.Cause(ctx)
			}
			if unseen++; unseen > 120 {
				return last, fmt.Errorf("%s %s/%s: not in the watch cache after two minutes; its rollout cannot be followed", kind, namespace, name)
			}
			continue
		}
		seen = true
		if window <= 0 {
			window = ProgressWindow(obj)
		}
		if deadline == nil {
			deadline = time.NewTimer(window)
		}
		if r, gen := Judge(obj); gen >= minGeneration {
			if r.Message != last.Message {
				// Progress: the no-progress deadline starts again.
				deadline.Reset(window)
			}
			last = r
			if r.Done {
				return r, nil
			}
			if failFast && r.Failed != "" && !r.FailedAt.Before(since) {
				return r, fmt.Errorf("rollout of %s %s/%s failed: %s", kind, namespace, name, r.Failed)
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			return last, fmt.Errorf("rollout of %s %s/%s made no progress for %s: %s", kind, namespace, name, window, last.Message)
		case <-ctx.Done():
			return last, context.Cause(ctx)
		}
	}
}

// deleted asks the server whether a workload missing from the cache is
// gone; an error (the server is unreachable) is not an answer.
func (w *Watcher) deleted(ctx context.Context, kind, namespace, name string) bool {
	if w.kube == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	apps := w.kube.AppsV1()
	switch kind {
	case "Deployment":
		_, err = apps.Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	case "StatefulSet":
		_, err = apps.StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
	case "DaemonSet":
		_, err = apps.DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	default:
		return false
	}
	return apierrors.IsNotFound(err)
}

// ProgressWindow is how long a workload's rollout may go without progress
// when the upgrade sets no rolloutTimeout: a Deployment's own
// progressDeadlineSeconds (default 600) plus a grace for its controller to
// report the failure first (its message says more than ours), 10 minutes
// for kinds without a deadline of their own.
func ProgressWindow(obj runtime.Object) time.Duration {
	const grace, fallback = 30 * time.Second, 10 * time.Minute
	if d, ok := obj.(*appsv1.Deployment); ok {
		secs := int32(600)
		if d.Spec.ProgressDeadlineSeconds != nil {
			secs = *d.Spec.ProgressDeadlineSeconds
		}
		return time.Duration(secs)*time.Second + grace
	}
	return fallback
}

// Judge returns the rollout verdict and generation of a workload object.
func Judge(obj any) (Rollout, int64) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return DeploymentRollout(o), o.Generation
	case *appsv1.StatefulSet:
		return StatefulSetRollout(o), o.Generation
	case *appsv1.DaemonSet:
		return DaemonSetRollout(o), o.Generation
	}
	return Rollout{Failed: fmt.Sprintf("unsupported object %T", obj)}, 0
}

// Ref names one workload the watcher caches.
type Ref struct {
	Kind, Namespace, Name string
}

// Labelled lists the cached workloads whose meshroll.io/upgrade label names
// upgrade, sorted by kind, namespace and name. Rollback uses it to find what
// an upgrade moved even when its record of the move was lost (a status write
// that failed or was overwritten): the label is written in the same patch as
// the move itself, so the cluster never forgets it.
func (w *Watcher) Labelled(upgrade string) []Ref {
	var out []Ref
	for _, kind := range []string{"DaemonSet", "Deployment", "StatefulSet"} {
		for _, obj := range w.informer(kind).GetStore().List() {
			m, err := meta.Accessor(obj)
			if err != nil || m.GetLabels()[LabelUpgrade] != upgrade {
				continue
			}
			out = append(out, Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()})
		}
	}
	slices.SortFunc(out, func(a, b Ref) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}
