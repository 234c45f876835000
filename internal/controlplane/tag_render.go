package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
)

// installerLabelDomain marks the labels Istio's installers own
// (operator.istio.io/component, install.operator.istio.io/owning-resource…).
// `istioctl uninstall --purge` deletes whatever carries
// operator.istio.io/component, and `istioctl tag set/generate` drops every
// label of this domain from a tag's objects: a tag is managed by its user,
// not by an install, and must outlive the installs it points at.
const installerLabelDomain = "operator.istio.io"

// lastAppliedAnnotation is kubectl's record of its last client-side apply.
// istioctl copies every annotation of the revision's injector onto the tag,
// this one included, which would make a later `kubectl apply` of the tag
// diff against the injector's configuration; meshroll leaves it behind.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// tagObjects renders what `istioctl tag set <tag> --revision <rev>` writes:
// the istio-revision-tag-<tag> MutatingWebhookConfiguration, the tag's
// Service where the release's istiod chart has one (1.28 on), and for the
// default tag istiod-default-validator. Each is rendered from the revision's
// own charts and takes its client config, labels and annotations from the
// revision's injector, exactly as istioctl does, so that either tool can move
// or remove what the other made and `istioctl uninstall` treats both alike.
func tagObjects(ctx context.Context, kc kubernetes.Interface, r istio.RenderOptions, tag string) ([]*unstructured.Unstructured, error) {
	injName := injectorWebhookName(r.Revision)
	injector, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, injName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to get injector webhook %q of revision %q: %w", injName, r.Revision, err)
	}
	rr := r
	rr.Components = []istio.Component{istio.Istiod}
	rr.Values = map[string]any{"revisionTags": []any{tag}}
	rendered, err := istio.Render(ctx, rr)
	if err != nil {
		return nil, err
	}
	wh := findTagged(rendered, "MutatingWebhookConfiguration", tag)
	if wh == nil {
		return nil, fmt.Errorf("failed to render MutatingWebhookConfiguration %q: the istiod chart of istio %s produced none", istio.TagWebhookPrefix+tag, r.Version)
	}
	out, err := tagWebhook(wh, injector)
	if err != nil {
		return nil, err
	}
	objs := []*unstructured.Unstructured{out}
	if svc := findTagged(rendered, "Service", tag); svc != nil {
		objs = append(objs, tagService(svc))
	}
	if tag != istio.DefaultRevision {
		return objs, nil
	}
	vwc, err := defaultValidator(ctx, kc, r, injector)
	if err != nil {
		return nil, err
	}
	return append(objs, vwc), nil
}

// findTagged returns the rendered object of kind that carries istio.io/tag=tag
// (by label, not name: outside istio-system the chart suffixes the name).
func findTagged(objs []*unstructured.Unstructured, kind, tag string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetLabels()[istio.LabelTag] == tag {
			return o
		}
	}
	return nil
}

// tagWebhook turns the rendered tag webhook into the one to apply: the
// injector's client config and metadata, no installer labels.
func tagWebhook(rendered *unstructured.Unstructured, injector *admissionv1.MutatingWebhookConfiguration) (*unstructured.Unstructured, error) {
	var mwc admissionv1.MutatingWebhookConfiguration
	if err := fromUnstructured(rendered, &mwc); err != nil {
		return nil, err
	}
	if err := AdoptInjectorClientConfig(&mwc, injector); err != nil {
		return nil, err
	}
	inheritMetadata(&mwc.ObjectMeta, injector.ObjectMeta)
	mwc.Labels = dropInstallerLabels(mwc.Labels)
	return toUnstructured(&mwc)
}

// istioctlRelease is the Helm release name istioctl renders every chart as
// (operator/pkg/helm). It shows in the release labels of the one tag object
// istioctl does not relabel from the injector: the tag's Service.
const istioctlRelease = "istio"

// tagService turns the rendered tag Service into the one istioctl writes:
// no installer labels, and the release labels of istioctl's render, so that
// either tool's Service is the other's.
func tagService(rendered *unstructured.Unstructured) *unstructured.Unstructured {
	svc := rendered.DeepCopy()
	labels := dropInstallerLabels(svc.GetLabels())
	for _, k := range []string{"release", "app.kubernetes.io/instance"} {
		if _, ok := labels[k]; ok {
			labels[k] = istioctlRelease
		}
	}
	svc.SetLabels(labels)
	return svc
}

// defaultValidator renders istiod-default-validator from the release's
// `default` chart, as istioctl does when the default tag moves: its
// objectSelector skips config labelled istio.io/rev, which the labelled
// revision's own validator judges, so an old default revision never rejects
// config written for a newer canary. A chart source without that chart (a
// Helm repository publishes only base, istiod and gateway) falls back to
// base's legacy template, given the same selector and tag label.
func defaultValidator(ctx context.Context, kc kubernetes.Interface, r istio.RenderOptions, injector *admissionv1.MutatingWebhookConfiguration) (*unstructured.Unstructured, error) {
	obj, err := renderDefaultValidator(ctx, r)
	if err != nil {
		return nil, err
	}
	var vwc admissionv1.ValidatingWebhookConfiguration
	if err := fromUnstructured(obj, &vwc); err != nil {
		return nil, err
	}
	inheritMetadata(&vwc.ObjectMeta, injector.ObjectMeta)
	vwc.Labels = dropInstallerLabels(vwc.Labels)
	if err := adoptValidatorTarget(ctx, kc, &vwc, r); err != nil {
		return nil, err
	}
	// istiod flips failurePolicy to Fail once it serves validation: keep what
	// the live object says, as istioctl does.
	live, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, DefaultValidatorName, metav1.GetOptions{})
	if err == nil {
		keepFailurePolicy(&vwc, live)
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("failed to get validating webhook %q: %w", DefaultValidatorName, err)
	}
	return toUnstructured(&vwc)
}

// renderDefaultValidator renders the validator from the default chart, or
// from base's legacy defaultRevision template where the source has no
// default chart.
func renderDefaultValidator(ctx context.Context, r istio.RenderOptions) (*unstructured.Unstructured, error) {
	rd := r
	rd.Components, rd.Values = []istio.Component{istio.Default}, nil
	obj, err := renderOne(ctx, rd, "ValidatingWebhookConfiguration", DefaultValidatorName)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return obj, err
	}
	rb := r
	rb.Components = []istio.Component{istio.Base}
	rb.Values = map[string]any{"defaultRevision": r.Revision}
	if obj, err = renderOne(ctx, rb, "ValidatingWebhookConfiguration", DefaultValidatorName); err != nil {
		return nil, err
	}
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[istio.LabelTag] = istio.DefaultRevision
	obj.SetLabels(labels)
	hooks, _, err := unstructured.NestedSlice(obj.Object, "webhooks")
	if err != nil {
		return nil, fmt.Errorf("failed to read webhooks of %q: %w", DefaultValidatorName, err)
	}
	for i := range hooks {
		if h, ok := hooks[i].(map[string]any); ok {
			h["objectSelector"] = map[string]any{"matchExpressions": []any{
				map[string]any{"key": istio.LabelRev, "operator": string(metav1.LabelSelectorOpDoesNotExist)},
			}}
		}
	}
	if err := unstructured.SetNestedSlice(obj.Object, hooks, "webhooks"); err != nil {
		return nil, fmt.Errorf("failed to write webhooks of %q: %w", DefaultValidatorName, err)
	}
	return obj, nil
}

// adoptValidatorTarget points the default validator at the revision's own
// validator (client config and caBundle). Without one (istioctl tolerates
// that) the rendered Service target stays.
func adoptValidatorTarget(ctx context.Context, kc kubernetes.Interface, vwc *admissionv1.ValidatingWebhookConfiguration, r istio.RenderOptions) error {
	srcName := validatorWebhookName(r.Revision, r.Namespace)
	src, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, srcName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("failed to get validating webhook %q: %w", srcName, err)
	default:
		return AdoptValidatorClientConfig(vwc, src)
	}
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

// inheritMetadata gives a tag's object the labels (but "app", which names
// what the injector itself is) and annotations of the revision's injector,
// over the rendered ones, as istioctl does: whatever the install stamped on
// the revision (owner labels, user labels, webhook annotations) follows it
// onto its tags.
func inheritMetadata(dst *metav1.ObjectMeta, injector metav1.ObjectMeta) {
	for k, v := range injector.Labels {
		if k == "app" {
			continue
		}
		if dst.Labels == nil {
			dst.Labels = map[string]string{}
		}
		dst.Labels[k] = v
	}
	for k, v := range injector.Annotations {
		if k == lastAppliedAnnotation {
			continue
		}
		if dst.Annotations == nil {
			dst.Annotations = map[string]string{}
		}
		dst.Annotations[k] = v
	}
}

// dropInstallerLabels returns labels without those of installerLabelDomain.
func dropInstallerLabels(labels map[string]string) map[string]string {
	if labels == nil {
		return nil
	}
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if !strings.Contains(k, installerLabelDomain) {
			out[k] = v
		}
	}
	return out
}

// AdoptInjectorClientConfig gives every webhook of a rendered tag
// configuration the client config (URL or Service path, and caBundle) and
// the reinvocation policy of the revision's own injector, so the tag reaches
// the same injector the revision does and behaves like it.
func AdoptInjectorClientConfig(tag, injector *admissionv1.MutatingWebhookConfiguration) error {
	var src *admissionv1.MutatingWebhook
	for i := range injector.Webhooks {
		if strings.HasSuffix(injector.Webhooks[i].Name, "sidecar-injector.istio.io") {
			src = &injector.Webhooks[i]
			break
		}
	}
	if src == nil {
		return fmt.Errorf("failed to read injector webhook %q: it has no sidecar-injector.istio.io webhook", injector.Name)
	}
	for i := range tag.Webhooks {
		tag.Webhooks[i].ClientConfig = *src.ClientConfig.DeepCopy()
		if src.ReinvocationPolicy != nil {
			p := *src.ReinvocationPolicy
			tag.Webhooks[i].ReinvocationPolicy = &p
		}
	}
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
	return nil
}

// keepFailurePolicy carries the live validator's failurePolicy over, as
// istioctl does: a Fail that istiod set is left unset rather than claimed,
// so it stays istiod's to manage (the API's default is Fail).
func keepFailurePolicy(vwc, live *admissionv1.ValidatingWebhookConfiguration) {
	byName := map[string]*admissionv1.FailurePolicyType{}
	for _, h := range live.Webhooks {
		byName[h.Name] = h.FailurePolicy
	}
	for i := range vwc.Webhooks {
		fp, ok := byName[vwc.Webhooks[i].Name]
		if !ok {
			continue
		}
		if fp != nil && *fp == admissionv1.Fail {
			fp = nil
		}
		vwc.Webhooks[i].FailurePolicy = fp
	}
}

// tagServices lists the Services of a tag (istioctl 1.28+ makes one per tag).
func tagServices(ctx context.Context, kc kubernetes.Interface, ns, tag string) ([]corev1.Service, error) {
	list, err := kc.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: istio.LabelTag + "=" + tag})
	if err != nil {
		return nil, fmt.Errorf("failed to list services of tag %q: %w", tag, err)
	}
	return list.Items, nil
}
