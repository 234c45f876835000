package controlplane

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/manifest"
	"github.com/meshroll/meshroll/sandbox/injector"
)

// Clients are the API clients an install needs.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// InstallOptions say which revision to install and how.
type InstallOptions struct {
	Render istio.RenderOptions
	// DryRun sends every write as a server-side dry run and skips waiting.
	DryRun bool
	// Timeout bounds each wait (CRDs established, istiod available); 0 = 5m.
	Timeout time.Duration
}

// Result reports what an install did.
type Result struct {
	Revision string
	Changes  []Change
}

// Install renders a revision and applies it beside whatever runs already:
// namespaces, then CRDs (waiting until they are established), then the rest;
// then it waits until the revision's istiod Deployment is available. Every
// step is an idempotent apply, so an install interrupted at any point
// completes when it is run again.
func Install(ctx context.Context, c Clients, opts InstallOptions) (*Result, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	rev := opts.Render.Revision
	if rev == "" {
		rev = istio.RevisionName(opts.Render.Version)
		opts.Render.Revision = rev
	}
	objs, err := istio.Render(ctx, opts.Render)
	if err != nil {
		return nil, err
	}
	if err := adaptToSandbox(ctx, c.Kube, objs); err != nil {
		return nil, err
	}
	crds, rest := manifest.Split(objs)
	rest = append(namespacesFor(rest), rest...)

	a := NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun)
	res := &Result{Revision: rev}
	changes, err := a.Apply(ctx, crds)
	res.Changes = append(res.Changes, changes...)
	if err != nil {
		return res, err
	}
	names := make([]string, 0, len(crds))
	for _, crd := range crds {
		names = append(names, crd.GetName())
	}
	if err := a.WaitEstablished(ctx, names, opts.Timeout); err != nil {
		return res, err
	}
	changes, err = a.Apply(ctx, rest)
	res.Changes = append(res.Changes, changes...)
	if err != nil || opts.DryRun {
		return res, err
	}
	ns := opts.Render.Namespace
	if ns == "" {
		ns = istio.SystemNamespace
	}
	return res, WaitIstiod(ctx, c.Kube, ns, rev, opts.Timeout)
}

// adaptToSandbox points Istio's webhooks at the sandbox injector when the
// cluster is meshroll's sandbox (which has no istiod to answer them); on a real
// cluster it changes nothing.
func adaptToSandbox(ctx context.Context, kc kubernetes.Interface, objs []*unstructured.Unstructured) error {
	ep, found, err := injector.LoadEndpoint(ctx, kc)
	if err != nil || !found {
		return err
	}
	for _, o := range objs {
		if _, err := injector.Rewrite(o, ep); err != nil {
			return err
		}
	}
	return nil
}

// namespacesFor returns Namespace objects for every namespace the objects live
// in that the objects do not create themselves: Istio's charts assume their
// namespace exists.
func namespacesFor(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	declared := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			declared[o.GetName()] = true
		}
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		ns := o.GetNamespace()
		if ns == "" || declared[ns] {
			continue
		}
		declared[ns] = true
		n := &unstructured.Unstructured{}
		n.SetAPIVersion("v1")
		n.SetKind("Namespace")
		n.SetName(ns)
		// The API server stamps this label on every namespace; applying
		// without it would strip and re-add it, turning every rerun into a
		// write.
		n.SetLabels(map[string]string{"kubernetes.io/metadata.name": ns})
		out = append(out, n)
	}
	return out
}

// IstiodName is the Deployment (and Service) name of a revision's istiod.
func IstiodName(rev string) string {
	if rev == "" || rev == istio.DefaultRevision {
		return "istiod"
	}
	return "istiod-" + rev
}

// WaitIstiod blocks until the revision's istiod Deployment is Available and
// all its replicas are updated.
func WaitIstiod(ctx context.Context, kc kubernetes.Interface, ns, rev string, timeout time.Duration) error {
	name := IstiodName(rev)
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			last = "not found"
			return false, nil
		}
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, ptrOr(d.Spec.Replicas, 1))
		return deploymentAvailable(d), nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for deployment %s/%s to become available within %s (last seen: %s): %w", ns, name, timeout, last, err)
	}
	return nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := ptrOr(d.Spec.Replicas, 1)
	if d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
