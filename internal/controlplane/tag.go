package controlplane

import (
	"context"
	"fmt"
	"strings"

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
// namespaces labelled istio.io/rev=<tag> are injected by Revision. It renders
// the webhook from the revision's own istiod chart and copies the client
// config of the revision's injector, as istioctl does. The default tag also
// points istiod-default-validator at the revision and neutralises a legacy
// non-revisioned injector.
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

// tagObjects renders the tag webhook (and for the default tag the default
// validator) and gives them the client config of the revision's own webhooks.
func tagObjects(ctx context.Context, kc kubernetes.Interface, r istio.RenderOptions, tag string) ([]*unstructured.Unstructured, error) {
	admit := kc.AdmissionregistrationV1()
	injName := injectorWebhookName(r.Revision)
	injector, err := admit.MutatingWebhookConfigurations().Get(ctx, injName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to get injector webhook %q of revision %q: %w", injName, r.Revision, err)
	}
	rr := r
	rr.Components = []istio.Component{istio.Istiod}
	rr.Values = map[string]any{"revisionTags": []any{tag}}
	wh, err := renderOne(ctx, rr, "MutatingWebhookConfiguration", istio.TagWebhookPrefix+tag)
	if err != nil {
		return nil, err
	}
	var mwc admissionv1.MutatingWebhookConfiguration
	if err := fromUnstructured(wh, &mwc); err != nil {
		return nil, err
	}
	if err := AdoptInjectorClientConfig(&mwc, injector); err != nil {
		return nil, err
	}
	out, err := toUnstructured(&mwc)
	if err != nil {
		return nil, err
	}
	objs := []*unstructured.Unstructured{out}
	if tag != istio.DefaultRevision {
		return objs, nil
	}
	vwc, err := defaultValidator(ctx, kc, r)
	if err != nil {
		return nil, err
	}
	return append(objs, vwc), nil
}

// defaultValidator renders istiod-default-validator from the base chart with
// defaultRevision set and copies the revision validator's client config.
func defaultValidator(ctx context.Context, kc kubernetes.Interface, r istio.RenderOptions) (*unstructured.Unstructured, error) {
	admit := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	rb := r
	rb.Components = []istio.Component{istio.Base}
	rb.Values = map[string]any{"defaultRevision": r.Revision}
	obj, err := renderOne(ctx, rb, "ValidatingWebhookConfiguration", DefaultValidatorName)
	if err != nil {
		return nil, err
	}
	var vwc admissionv1.ValidatingWebhookConfiguration
	if err := fromUnstructured(obj, &vwc); err != nil {
		return nil, err
	}
	srcName := validatorWebhookName(r.Revision, r.Namespace)
	src, err := admit.Get(ctx, srcName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// No per-revision validator (as istioctl tolerates): keep the
		// rendered Service target, adapted to the sandbox if there is one.
		if err := adaptToSandbox(ctx, kc, []*unstructured.Unstructured{obj}); err != nil {
			return nil, err
		}
		if err := fromUnstructured(obj, &vwc); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("failed to get validating webhook %q: %w", srcName, err)
	default:
		if err := AdoptValidatorClientConfig(&vwc, src); err != nil {
			return nil, err
		}
	}
	// istiod flips failurePolicy to Fail once it serves validation: keep what
	// the live object says, as istioctl does.
	live, err := admit.Get(ctx, DefaultValidatorName, metav1.GetOptions{})
	if err == nil {
		keepFailurePolicy(&vwc, live)
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("failed to get validating webhook %q: %w", DefaultValidatorName, err)
	}
	return toUnstructured(&vwc)
}

// renderOne renders r and returns the one object of kind and name.
func renderOne(ctx context.Context, r istio.RenderOptions, kind, name string) (*unstructured.Unstructured, error) {
	objs, err := istio.Render(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o, nil
		}
	}
	return nil, fmt.Errorf("failed to render %s %q: the %s chart of istio %s produced none", kind, name, r.Components[0], r.Version)
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

// AdoptInjectorClientConfig gives every webhook of a rendered tag
// configuration the client config (URL or Service path, and caBundle) of the
// revision's own injector, so the tag reaches the same injector the revision
// does; the sandbox's Service record annotation comes along.
func AdoptInjectorClientConfig(tag, injector *admissionv1.MutatingWebhookConfiguration) error {
	var src *admissionv1.WebhookClientConfig
	for i := range injector.Webhooks {
		if strings.HasSuffix(injector.Webhooks[i].Name, "sidecar-injector.istio.io") {
			src = &injector.Webhooks[i].ClientConfig
			break
		}
	}
	if src == nil {
		return fmt.Errorf("failed to read injector webhook %q: it has no sidecar-injector.istio.io webhook", injector.Name)
	}
	for i := range tag.Webhooks {
		tag.Webhooks[i].ClientConfig = *src.DeepCopy()
	}
	copyServiceRecord(&tag.ObjectMeta, injector.ObjectMeta)
	return nil
}

// AdoptValidatorClientConfig gives the default validator's webhooks the
// client config of the revision's own validator.
func AdoptValidatorClientConfig(vwc, src *admissionv1.ValidatingWebhookConfiguration) error {
	if len(src.Webhooks) == 0 {
		return fmt.Errorf("failed to read validating webhook %q: it has no webhooks", src.Name)
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].ClientConfig = *src.Webhooks[0].ClientConfig.DeepCopy()
	}
	copyServiceRecord(&vwc.ObjectMeta, src.ObjectMeta)
	return nil
}

func keepFailurePolicy(vwc, live *admissionv1.ValidatingWebhookConfiguration) {
	byName := map[string]*admissionv1.FailurePolicyType{}
	for _, h := range live.Webhooks {
		byName[h.Name] = h.FailurePolicy
	}
	for i := range vwc.Webhooks {
		if fp, ok := byName[vwc.Webhooks[i].Name]; ok && fp != nil {
			vwc.Webhooks[i].FailurePolicy = fp
		}
	}
}

func copyServiceRecord(dst *metav1.ObjectMeta, src metav1.ObjectMeta) {
	v, ok := src.Annotations[inventory.AnnotationWebhookService]
	if !ok {
		return
	}
	if dst.Annotations == nil {
		dst.Annotations = map[string]string{}
	}
	dst.Annotations[inventory.AnnotationWebhookService] = v
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
