package dataplane

import (
	"encoding/json"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Values the patch fixtures use.
const (
	upgradeName = "1-23-2-to-1-24-2"
	tokenA      = "2025-03-01T10:00:00Z"
	tokenB      = "2025-03-02T11:30:00Z"
	ownerStamp  = "2025-02-01T08:00:00+01:00"
)

// deployment is a Deployment whose pod template carries templateLabels and
// templateAnnotations (nil leaves the map out).
func deployment(templateLabels, templateAnnotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", Generation: 4,
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3"},
		},
		Spec: appsv1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: templateLabels, Annotations: templateAnnotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/web:1"}}},
			},
		},
	}
}

// withMarks returns d with object labels and annotations added, as a
// previous move would have left them.
func withMarks(d *appsv1.Deployment, labels, annotations map[string]string) *appsv1.Deployment {
	d = d.DeepCopy()
	for k, v := range labels {
		d.Labels[k] = v
	}
	for k, v := range annotations {
		d.Annotations[k] = v
	}
	return d
}

// applyPatch merges patch into d as the API server does for a JSON merge
// patch; a nil patch leaves d unchanged.
func applyPatch(t *testing.T, d *appsv1.Deployment, patch []byte) *appsv1.Deployment {
	t.Helper()
	if patch == nil {
		return d.DeepCopy()
	}
	doc, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("failed to marshal deployment: %v", err)
	}
	merged, err := jsonpatch.MergePatch(doc, patch)
	if err != nil {
		t.Fatalf("failed to apply merge patch %s: %v", patch, err)
	}
	var out appsv1.Deployment
	if err := json.Unmarshal(merged, &out); err != nil {
		t.Fatalf("failed to unmarshal patched deployment: %v", err)
	}
	return &out
}

// templateOfDeployment is what the executor hands Forward and Restore.
func templateOfDeployment(d *appsv1.Deployment) Template {
	tpl, _ := templateOf(d)
	return tpl
}

// decodePatch turns a patch into a generic value for comparison.
func decodePatch(t *testing.T, patch []byte) any {
	t.Helper()
	if patch == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(patch, &v); err != nil {
		t.Fatalf("patch %s is not JSON: %v", patch, err)
	}
	return v
}
