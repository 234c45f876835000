package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
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
	"github.com/meshroll/meshroll/internal/plan"
)

// Clients are the API clients an install needs.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// InstallOptions say which revision to install and how.
type InstallOptions struct {
	Render istio.RenderOptions
	// Objects, when set, are applied instead of rendering Render: the CLI
	// renders, post-processes and validates first, and applies exactly that.
	// Render.Version and Render.Revision still name what they are.
	Objects []*unstructured.Unstructured
	// DryRun sends every write as a server-side dry run and skips waiting.
	DryRun bool
	// Timeout bounds each wait (CRDs established, istiod available); 0 = 5m.
	Timeout time.Duration
}

// Result reports what an install did.
type Result struct {
	Revision string
	Changes  []Change
	// Record is what the revision's record holds after the install (the
	// planned one on a dry run, which writes nothing).
	Record Record
}

// Install renders a revision and applies it beside whatever runs already:
// CRDs (waiting until they are established), then namespaces, then the
// revision's record (see Record: what remove will delete), then the rest;
// then it waits until the revision's istiod Deployment is available and its
// injector webhook exists with istiod's CA in it, and marks the record
// installed. Every step is an
// idempotent apply, so an install interrupted at any point completes when it
// is run again, and the record written before the first revision-owned object
// lets remove clean up after an install that never completed.
func Install(ctx context.Context, c Clients, opts InstallOptions) (*Result, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	rev := opts.Render.Revision
	if rev == "" {
		rev = istio.RevisionName(opts.Render.Version)
		opts.Render.Revision = rev
	}
	ns := opts.Render.Namespace
	if ns == "" {
		ns = istio.SystemNamespace
	}
	objs := opts.Objects
	if objs == nil {
		var err error
		if objs, err = istio.Render(ctx, opts.Render); err != nil {
			return nil, err
		}
	} else {
		objs = deepCopy(objs)
	}
	crds, rest := manifest.Split(objs)
	namespaces := namespacesFor(rest)
	if err := leaveToIstiod(ctx, c.Kube, rest); err != nil {
		return nil, err
	}

	prev, found, err := ReadRecord(ctx, c.Kube, ns, rev)
	if err != nil {
		return nil, err
	}
	rec := Record{Revision: rev, Version: opts.Render.Version, State: StateInstalling, Objects: prev.Objects}.Merge(ownedRefs(rest, rev))
	// A rerun that tracks nothing new keeps the record as it is, so an
	// idempotent install writes nothing at all.
	intent := !found || prev.Version != rec.Version || len(prev.Objects) != len(rec.Objects)
	if !intent {
		rec.State = prev.State
	}

	a := NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun)
	res := &Result{Revision: rev, Record: rec}
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
	changes, err = a.Apply(ctx, namespaces)
	res.Changes = append(res.Changes, changes...)
	if err != nil {
		return res, err
	}
	// Record the intent before the first revision-owned write: an install
	// killed halfway leaves a record that a rerun or a remove can use.
	if intent && !opts.DryRun {
		if err := WriteRecord(ctx, a, ns, rec); err != nil {
			return res, err
		}
	}
	if opts.DryRun {
		// A dry run cannot place objects in a namespace it only pretended
		// to create: report those as to be created, judge the rest.
		var judged []*unstructured.Unstructured
		for _, o := range rest {
			if newNamespace(changes, o.GetNamespace()) {
				res.Changes = append(res.Changes, Change{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(), Action: Created})
				continue
			}
			judged = append(judged, o)
		}
		rest = judged
	}
	changes, err = a.Apply(ctx, rest)
	res.Changes = append(res.Changes, changes...)
	if err != nil || opts.DryRun {
		return res, err
	}
	if err := WaitIstiod(ctx, c.Kube, ns, rev, opts.Timeout); err != nil {
		return res, err
	}
	if err := waitInjector(ctx, c.Kube, rev, opts.Timeout); err != nil {
		return res, err
	}
	if err := waitValidators(ctx, c.Kube, rest, opts.Timeout); err != nil {
		return res, err
	}
	if res.Record.State == StateInstalled {
		return res, nil
	}
	res.Record.State = StateInstalled
	return res, WriteRecord(ctx, a, ns, res.Record)
}

// newNamespace reports whether changes create namespace ns.
func newNamespace(changes []Change, ns string) bool {
	for _, c := range changes {
		if c.Kind == "Namespace" && c.Name == ns && c.Action == Created {
			return true
		}
	}
	return false
}

// ownedRefs returns references to the objects an install of rev owns, in
// apply order (see Owned).
func ownedRefs(objs []*unstructured.Unstructured, rev string) []ObjectRef {
	var out []ObjectRef
	for _, o := range objs {
		if Owned(o, rev) {
			out = append(out, RefOf(o))
		}
	}
	return out
}

func deepCopy(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// InjectorName is the MutatingWebhookConfiguration a revision's istiod chart
// renders for its injector.
func InjectorName(rev string) string {
	if rev == "" || rev == istio.DefaultRevision {
		return istio.InjectorConfigMapPrefix
	}
	return istio.InjectorConfigMapPrefix + "-" + rev
}

// leaveToIstiod drops from the rendered validating webhooks what the running
// istiod manages itself, so that applying the revision again never takes it
// back: the empty caBundle the chart renders (istiod patches in its CA) and
// the chart's failurePolicy Ignore where istiod has already switched the live
// webhook to Fail (it does once it has seen itself reject invalid config).
// Re-applying either would leave the validator unverifiable or fail-open
// until istiod noticed and patched it again.
func leaveToIstiod(ctx context.Context, kc kubernetes.Interface, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		hooks, _, err := unstructured.NestedSlice(o.Object, "webhooks")
		if err != nil {
			return fmt.Errorf("failed to read webhooks of %q: %w", o.GetName(), err)
		}
		live := map[string]admissionv1.FailurePolicyType{}
		cur, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, o.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("failed to get validating webhook %q: %w", o.GetName(), err)
		default:
			for _, h := range cur.Webhooks {
				if h.FailurePolicy != nil {
					live[h.Name] = *h.FailurePolicy
				}
			}
		}
		for _, raw := range hooks {
			h, ok := raw.(map[string]any)
			if !ok {
				continue
			}
			if cc, ok := h["clientConfig"].(map[string]any); ok {
				if ca, _ := cc["caBundle"].(string); ca == "" {
					delete(cc, "caBundle")
				}
			}
			name, _ := h["name"].(string)
			if live[name] == admissionv1.Fail {
				delete(h, "failurePolicy")
			}
		}
		if err := unstructured.SetNestedSlice(o.Object, hooks, "webhooks"); err != nil {
			return fmt.Errorf("failed to write webhooks of %q: %w", o.GetName(), err)
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

// CheckPath says whether installing release to beside the installed control
// planes is one safe canary hop, as the planner sees it. It returns the
// planned path and, when the install is unsafe (no path, or a path that needs
// intermediate releases first), an error that explains why. Nothing installed
// means nothing to be unsafe about.
func CheckPath(installed []InstalledRevision, to plan.Version, available []plan.Version) (plan.Path, error) {
	if len(installed) == 0 {
		return plan.Path{}, nil
	}
	req := plan.PathRequest{To: to, Strategy: plan.StrategyCanary, Available: available}
	for _, r := range installed {
		req.From = append(req.From, r.Version)
	}
	path, err := plan.PlanPath(req)
	if err != nil {
		return path, fmt.Errorf("refusing to install %s beside %s: %w", to, joinInstalled(installed), err)
	}
	if len(path.Hops) > 1 {
		return path, fmt.Errorf("refusing to install %s beside %s: the safe path needs %d hops, install them in order:\n%s", to, joinInstalled(installed), len(path.Hops), path)
	}
	return path, nil
}

func joinInstalled(revs []InstalledRevision) string {
	s := make([]string, 0, len(revs))
	for _, r := range revs {
		s = append(s, r.Name+" ("+r.Version.String()+")")
	}
	return strings.Join(s, ", ")
}
