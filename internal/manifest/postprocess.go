package manifest

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PostProcess is what happens to rendered manifests before they are written:
// the seed's "add standard labels, mutate in ways the install options do not
// allow". Patches run first, against what Istio rendered (so selectors are
// written against Istio's names and labels), then labels and annotations are
// stamped, so a patch cannot remove a label the organisation requires.
type PostProcess struct {
	// Labels are set on every object's metadata.labels, overwriting a value
	// the chart rendered for the same key.
	Labels map[string]string
	// Annotations are set on every object's metadata.annotations, likewise.
	Annotations map[string]string
	// TemplateLabels also stamps Labels on pod templates (Deployments,
	// StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs). Off by
	// default: a pod template change rolls every pod of the workload, and
	// template labels are what Services and PodDisruptionBudgets select, so
	// stamping them is a decision, not a side effect. Annotations are never
	// stamped on templates for the same reason.
	TemplateLabels bool
	// Patches are applied in order; each must match at least one object.
	Patches []Patch
}

// podTemplatePath says where a workload kind keeps its pod template; nil
// for kinds without one.
func podTemplatePath(kind string) []string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		return []string{"spec", "template"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	}
	return nil
}

// Apply returns post-processed copies of objs, in the same order; objs are
// not modified. Every patch is validated before any is applied, and every
// failure (an invalid patch, a patch matching nothing, a patch that does not
// apply) is reported, not just the first, so one run shows all that broke
// after an Istio upgrade.
func (p PostProcess) Apply(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	var errs []error
	for _, pt := range p.Patches {
		if err := pt.validate(); err != nil {
			errs = append(errs, fmt.Errorf("failed to validate %s: %w", pt.name(), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, pt := range p.Patches {
		matched := 0
		for i, o := range out {
			if !pt.Target.Matches(o) {
				continue
			}
			matched++
			res, err := pt.apply(o)
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to apply %s to %s: %w", pt.name(), describe(o), err))
				continue
			}
			out[i] = res
		}
		if matched == 0 {
			errs = append(errs, fmt.Errorf("failed to apply %s: it matches no object", pt.name()))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, o := range out {
		if err := p.stamp(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stamp sets the labels and annotations on one object in place.
func (p PostProcess) stamp(o *unstructured.Unstructured) error {
	if len(p.Labels) > 0 {
		o.SetLabels(merged(o.GetLabels(), p.Labels))
	}
	if len(p.Annotations) > 0 {
		o.SetAnnotations(merged(o.GetAnnotations(), p.Annotations))
	}
	tpl := podTemplatePath(o.GetKind())
	if !p.TemplateLabels || len(p.Labels) == 0 || tpl == nil {
		return nil
	}
	field := append(tpl, "metadata", "labels")
	cur, _, err := unstructured.NestedStringMap(o.Object, field...)
	if err != nil {
		return fmt.Errorf("failed to stamp labels on the pod template of %s: %w", describe(o), err)
	}
	if err := unstructured.SetNestedStringMap(o.Object, merged(cur, p.Labels), field...); err != nil {
		return fmt.Errorf("failed to stamp labels on the pod template of %s: %w", describe(o), err)
	}
	return nil
}

// merged returns base overlaid with over, as a new map.
func merged(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
