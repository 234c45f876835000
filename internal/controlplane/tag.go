package controlplane

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// Deleted is the action reported for an object a command removed.
const Deleted Action = "deleted"

// DefaultValidatorName is the ValidatingWebhookConfiguration that validates
// Istio config for the revision the default tag points at.
const DefaultValidatorName = "istiod-default-validator"

// TagOptions name a revision tag and the revision it points at.
type TagOptions struct {
	Tag      string
	Revision string
	// Version is the Istio release of Revision; "" reads it from the
	// revision's istiod image. Its chart renders the tag's webhook, exactly
	// as istioctl does.
	Version string
	// Overwrite allows moving a tag that points at another revision.
	Overwrite bool
	// Force moves a tag even when running proxies would end up beyond
	// supported skew.
	Force bool
	// DryRun sends every write as a server-side dry run.
	DryRun bool
	// Snapshot is the cluster's inventory, read just before. It tells which
	// namespaces and workloads a move migrates; nil reads only the control
	// plane, and then a move is refused unless Force (skew cannot be judged).
	Snapshot *inventory.Snapshot
	// Namespace is the control plane's namespace; "" means istio-system.
	Namespace string
	Source    istio.ChartSource
	Cache     *istio.RenderCache
}

// TagResult reports what SetTag judged and changed.
type TagResult struct {
	Plan    *TagPlan `json:"plan"`
	Changes []Change `json:"changes"`
}

// SetTag creates or moves the istio-revision-tag-<tag> webhook so that
// namespaces labelled istio.io/rev=<tag> are injected by Revision. It writes
// exactly what `istioctl tag set` writes (see tagObjects): the webhook (and
// from Istio 1.28 on the tag's Service) rendered from the revision's own
// istiod chart, with the client config and metadata of the revision's
// injector and no installer labels, so istioctl and meshroll can each move
// the other's tags. The default tag also points istiod-default-validator at
// the revision and neutralises a legacy non-revisioned injector.
func SetTag(ctx context.Context, c Clients, opts TagOptions) (*TagResult, error) {
	ns := opts.Namespace
	if ns == "" {
		ns = istio.SystemNamespace
	}
	snap, light := opts.Snapshot, false
	if snap == nil {
		var err error
		if snap, err = controlPlaneSnapshot(ctx, c.Kube, ns); err != nil {
			return nil, err
		}
		light = true
	}
	p, err := PlanTag(snap, TagRequest{Tag: opts.Tag, Revision: opts.Revision, Overwrite: opts.Overwrite, Force: opts.Force})
	if err != nil {
		return nil, err
	}
	if light && p.Moves() && !opts.Force {
		return nil, fmt.Errorf("failed to move tag %q from %q to %q: proxy skew was not checked (no inventory); pass --force to move anyway", opts.Tag, p.Previous, p.Revision)
	}
	version := opts.Version
	if version == "" {
		version = p.Version
	}
	render := istio.RenderOptions{Version: version, Revision: opts.Revision, Namespace: ns, Source: opts.Source, Cache: opts.Cache}
	objs, err := tagObjects(ctx, c.Kube, render, opts.Tag)
	if err != nil {
		return nil, err
	}
	res := &TagResult{Plan: p}
	a := NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun)
	res.Changes, err = a.Apply(ctx, objs)
	if err != nil {
		return res, err
	}
	if opts.DryRun {
		if err := judgeDryRun(ctx, a, objs, res.Changes); err != nil {
			return res, err
		}
	}
	keep := ""
	if svc := findTagged(objs, "Service", opts.Tag); svc != nil {
		keep = svc.GetName()
	}
	gone, err := pruneTagServices(ctx, c.Kube, ns, opts.Tag, keep, opts.DryRun)
	res.Changes = append(res.Changes, gone...)
	if err != nil {
		return res, err
	}
	if opts.Tag == istio.DefaultRevision {
		ch, err := deactivateLegacyInjector(ctx, c.Kube, opts.DryRun)
		if err != nil {
			return res, err
		}
		if ch != nil {
			res.Changes = append(res.Changes, *ch)
		}
	}
	return res, nil
}

// judgeDryRun corrects the actions of a dry-run apply: the server does not
// bump resourceVersion on a dry run, so an object that would change looks
// unchanged unless its live copy is compared with what was applied.
func judgeDryRun(ctx context.Context, a *Applier, objs []*unstructured.Unstructured, changes []Change) error {
	for i := range changes {
		if i >= len(objs) || changes[i].Action != Unchanged {
			continue
		}
		live, err := a.Get(ctx, objs[i])
		if err != nil {
			return fmt.Errorf("failed to get %s %q: %w", changes[i].Kind, changes[i].Name, err)
		}
		if !ContainsFields(live.Object, objs[i].Object) {
			changes[i].Action = Configured
		}
	}
	return nil
}

// ContainsFields reports whether live already holds every field of want with
// the same value: fields the server adds (defaults, status, metadata) are
// ignored, so an apply of want would change nothing exactly when it is true.
func ContainsFields(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			lv, found := l[k]
			if !found {
				if wv == nil {
					continue
				}
				return false
			}
			if !ContainsFields(lv, wv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return false
		}
		for i := range w {
			if !ContainsFields(l[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return fmt.Sprint(live) == fmt.Sprint(want)
	}
}

// injectorWebhookName is a revision's own injector configuration.
func injectorWebhookName(rev string) string {
	if rev == "" || rev == istio.DefaultRevision {
		return istio.InjectorConfigMapPrefix
	}
	return istio.InjectorConfigMapPrefix + "-" + rev
}

// validatorWebhookName is a revision's own validating configuration.
func validatorWebhookName(rev, ns string) string {
	if rev == "" || rev == istio.DefaultRevision {
		return "istio-validator-" + ns
	}
	return "istio-validator-" + rev + "-" + ns
}

// neverMatch is the selector istioctl gives a legacy injector's webhooks to
// switch them off without deleting them.
func neverMatch() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"istio.io/deactivated": "never-match"}}
}

// deactivateLegacyInjector makes the non-revisioned istio-sidecar-injector
// (if any) match nothing, so only the default tag answers
// istio-injection=enabled. It returns nil when there is none.
func deactivateLegacyInjector(ctx context.Context, kc kubernetes.Interface, dryRun bool) (*Change, error) {
	mwcs := kc.AdmissionregistrationV1().MutatingWebhookConfigurations()
	w, err := mwcs.Get(ctx, istio.InjectorConfigMapPrefix, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get webhook %q: %w", istio.InjectorConfigMapPrefix, err)
	}
	if _, isTag := w.Labels[istio.LabelTag]; isTag {
		return nil, nil
	}
	ch := &Change{Kind: "MutatingWebhookConfiguration", Name: w.Name, Action: Unchanged}
	if !DeactivateInjector(w) {
		return ch, nil
	}
	opts := metav1.UpdateOptions{FieldManager: FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := mwcs.Update(ctx, w, opts); err != nil {
		return nil, fmt.Errorf("failed to deactivate webhook %q: %w", w.Name, err)
	}
	ch.Action = Configured
	return ch, nil
}

// DeactivateInjector sets every webhook's selectors to match nothing and
// reports whether anything changed.
func DeactivateInjector(w *admissionv1.MutatingWebhookConfiguration) bool {
	changed := false
	for i := range w.Webhooks {
		h := &w.Webhooks[i]
		if isNeverMatch(h.NamespaceSelector) && isNeverMatch(h.ObjectSelector) {
			continue
		}
		h.NamespaceSelector, h.ObjectSelector = neverMatch(), neverMatch()
		changed = true
	}
	return changed
}

func isNeverMatch(s *metav1.LabelSelector) bool {
	return s != nil && len(s.MatchExpressions) == 0 && len(s.MatchLabels) == 1 && s.MatchLabels["istio.io/deactivated"] == "never-match"
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return fmt.Errorf("failed to decode %s %q: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("failed to encode %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	// Server-side apply must not claim fields the typed round trip adds.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}
