package upgrade

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/inventory"
)

// This file moves workloads that have a pod template but nothing to
// restart: a CronJob's next run is created from its job template, so moving
// it is one write to that template (the same marks a restart writes, so
// rollback restores it the same way) and there is no rollout to wait for.

// templateOnly reports whether kind is moved by its template alone.
func templateOnly(kind string) bool { return kind == inventory.KindCronJob }

// moveTemplate applies job j to a CronJob: forward sets its job template's
// istio.io/rev (mechanism Pod) and meshroll's marks; backward restores the
// previous template. Rerunning either writes nothing.
func (r *run) moveTemplate(ctx context.Context, j job) (dataplane.Result, error) {
	cjs := r.Kube.BatchV1().CronJobs(j.namespace)
	cj, err := cjs.Get(ctx, j.name, metav1.GetOptions{})
	if err != nil {
		return dataplane.Result{}, fmt.Errorf("failed to get cronjob %q: %w", j.namespace+"/"+j.name, err)
	}
	tpl := cj.Spec.JobTemplate.Spec.Template
	t := dataplane.Template{Labels: cj.Labels, Annotations: cj.Annotations, TemplateLabels: tpl.Labels, TemplateAnnotations: tpl.Annotations}
	var patch []byte
	if j.forward {
		patch, err = dataplane.Forward(t, r.mu.Name, j.token, j.setRev)
	} else {
		patch, err = dataplane.Restore(t, r.mu.Name)
	}
	if err != nil || patch == nil {
		return dataplane.Result{}, err
	}
	if patch, err = jobTemplatePatch(patch); err != nil {
		return dataplane.Result{}, err
	}
	if _, err := cjs.Patch(ctx, j.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "meshroll"}); err != nil {
		return dataplane.Result{}, fmt.Errorf("failed to patch cronjob %q: %w", j.namespace+"/"+j.name, err)
	}
	return dataplane.Result{Wrote: true}, nil
}

// jobTemplatePatch moves a workload patch's spec.template under a CronJob's
// spec.jobTemplate.spec.template.
func jobTemplatePatch(patch []byte) ([]byte, error) {
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("failed to read a workload patch: %w", err)
	}
	if spec, ok := p["spec"]; ok {
		p["spec"] = map[string]any{"jobTemplate": map[string]any{"spec": spec}}
	}
	return json.Marshal(p)
}
