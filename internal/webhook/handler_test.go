package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

func TestHandlerMutate(t *testing.T) {
	withDeployment := func(f func(d *appsv1.Deployment)) *appsv1.Deployment {
		d := deployment()
		f(d)
		return d
	}
	statefulSet := appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: deployment().ObjectMeta,
		Spec:       appsv1.StatefulSetSpec{Template: podTemplate()},
	}
	daemonSet := appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: deployment().ObjectMeta,
		Spec:       appsv1.DaemonSetSpec{Template: podTemplate()},
	}
	gvk := func(group, kind string) metav1.GroupVersionKind {
		return metav1.GroupVersionKind{Group: group, Version: "v1", Kind: kind}
	}
	appsTemplate := []string{"spec", "template", "metadata", "labels"}
	cronTemplate := []string{"spec", "jobTemplate", "spec", "template", "metadata", "labels"}

	tests := []struct {
		name      string
		body      []byte
		wantPatch bool
		wantRev   string   // the template's istio.io/rev after applying the patch
		labels    []string // where the template's labels are
		wantWarn  string   // substring of the single warning, when one is expected
	}{
		{
			name:      "create with old revision is patched",
			body:      reviewJSON(t, admissionv1.Create, deploymentGVK, deployment()),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
			wantWarn: `istio.io/rev 1-23-2 -> 1-24-2 (assigned by MeshUpgrade to-1-24-2)`,
		},
		{
			name:      "update putting the old revision back is patched",
			body:      reviewJSON(t, admissionv1.Update, deploymentGVK, deployment()),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name: "already on the assigned revision",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				d.Spec.Template.Labels[istio.LabelRev] = newRev
			})),
			wantRev: newRev, labels: appsTemplate,
		},
		{
			name: "label absent among other labels is added",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				delete(d.Spec.Template.Labels, istio.LabelRev)
			})),
			wantPatch: true, wantRev: newRev, labels: appsTemplate, wantWarn: "<unset> -> 1-24-2",
		},
		{
			name: "no labels map adds one",
			body: reviewJSON(t, admissionv1.Create, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				d.Spec.Template.Labels = nil
			})),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name: "null labels map is replaced",
			body: reviewJSON(t, admissionv1.Create, deploymentGVK, []byte(
				`{"metadata":{"name":"checkout","labels":{"meshroll.io/upgrade":"to-1-24-2"}},"spec":{"template":{"metadata":{"labels":null},"spec":{}}}}`)),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name: "no template metadata adds it",
			body: reviewJSON(t, admissionv1.Create, deploymentGVK, []byte(
				`{"metadata":{"name":"checkout","labels":{"meshroll.io/upgrade":"to-1-24-2"}},"spec":{"template":{"spec":{}}}}`)),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name:      "statefulset",
			body:      reviewJSON(t, admissionv1.Update, gvk("apps", "StatefulSet"), statefulSet),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name:      "daemonset",
			body:      reviewJSON(t, admissionv1.Update, gvk("apps", "DaemonSet"), daemonSet),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name:      "cronjob template under jobTemplate",
			body:      reviewJSON(t, admissionv1.Update, cronJobGVK, cronJob()),
			wantPatch: true, wantRev: newRev, labels: cronTemplate,
		},
		{
			name: "unassigned workload is untouched",
			body: bytes.ReplaceAll(reviewJSON(t, admissionv1.Update, deploymentGVK, deployment()),
				[]byte(fixtureName), []byte("payments")),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name: "assigned but not labelled for an upgrade is untouched",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				delete(d.Labels, LabelUpgrade)
			})),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			// Issue 9 defect 7: the workload is assigned by upgrade
			// to-1-24-2, but its label names another upgrade (the one
			// moving it now): only that upgrade may assign it.
			name: "Defect7 assigned by another upgrade than its label names is untouched",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				d.Labels[LabelUpgrade] = "a-later-upgrade"
			})),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name: "opted out by template label",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				d.Spec.Template.Labels[istio.LabelSidecarInject] = "false"
			})),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name: "opted out by template annotation",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				d.Spec.Template.Annotations[istio.AnnotationSidecarInject] = "false"
			})),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name: "inject=true is no opt out",
			body: reviewJSON(t, admissionv1.Update, deploymentGVK, withDeployment(func(d *appsv1.Deployment) {
				d.Spec.Template.Labels[istio.LabelSidecarInject] = "true"
			})),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{
			name:    "delete is untouched",
			body:    reviewJSON(t, admissionv1.Delete, deploymentGVK, deployment()),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name:    "connect is untouched",
			body:    reviewJSON(t, admissionv1.Connect, deploymentGVK, deployment()),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name:    "other kind in apps is untouched",
			body:    reviewJSON(t, admissionv1.Update, gvk("apps", "ReplicaSet"), deployment()),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name:    "same kind name in another group is untouched",
			body:    reviewJSON(t, admissionv1.Update, gvk("example.com", "Deployment"), deployment()),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name: "subresource is untouched",
			body: bytes.Replace(reviewJSON(t, admissionv1.Update, deploymentGVK, deployment()),
				[]byte(`"name":"checkout","namespace"`), []byte(`"subResource":"scale","name":"checkout","namespace"`), 1),
			wantRev: oldRev, labels: appsTemplate,
		},
		{
			name: "generateName create takes the name from the object",
			body: bytes.Replace(reviewJSON(t, admissionv1.Create, deploymentGVK, deployment()),
				[]byte(`"name":"checkout","namespace"`), []byte(`"namespace"`), 1),
			wantPatch: true, wantRev: newRev, labels: appsTemplate,
		},
		{name: "malformed json", body: []byte(`{"request":`), wantWarn: "failed to decode AdmissionReview"},
		{name: "not json", body: []byte("hello"), wantWarn: "failed to decode AdmissionReview"},
		{name: "empty body", body: nil, wantWarn: "failed to decode"},
		{name: "review without request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantWarn: "no request"},
		{name: "object of the wrong shape", body: []byte(`{"request":{"uid":"x","object":{"spec":"nope"}}}`), wantWarn: "failed to decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(fixtureTable(), nil)
			resp := post(t, h, tt.body)
			if !resp.Allowed {
				t.Fatalf("Allowed = false, want true (fail open): %+v", resp)
			}
			if got := len(resp.Patch) > 0; got != tt.wantPatch {
				t.Fatalf("patch = %s, want patch %v", resp.Patch, tt.wantPatch)
			}
			if (resp.PatchType != nil) != tt.wantPatch {
				t.Errorf("PatchType = %v with patch %v", resp.PatchType, tt.wantPatch)
			}
			if tt.wantWarn != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tt.wantWarn)) {
				t.Errorf("Warnings = %q, want one containing %q", resp.Warnings, tt.wantWarn)
			}
			if tt.wantWarn == "" && !tt.wantPatch && len(resp.Warnings) > 0 {
				t.Errorf("Warnings = %q, want none", resp.Warnings)
			}
			if tt.labels == nil {
				return
			}
			if resp.UID != fixtureUID {
				t.Errorf("UID = %q, want %q", resp.UID, fixtureUID)
			}
			if got := patchedRev(t, tt.body, resp.Patch, tt.labels); got != tt.wantRev {
				t.Errorf("template %s after patch = %q, want %q (patch %s)", istio.LabelRev, got, tt.wantRev, resp.Patch)
			}
		})
	}
}

func TestHandlerStatsAndRoutes(t *testing.T) {
	h := NewHandler(fixtureTable(), nil)
	post(t, h, reviewJSON(t, admissionv1.Create, deploymentGVK, deployment()))
	post(t, h, reviewJSON(t, admissionv1.Delete, deploymentGVK, deployment()))
	post(t, h, []byte("{"))
	if got, want := h.Stats(), (Stats{Requests: 3, Patched: 1, Malformed: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, PathHealthz, http.StatusOK},
		{http.MethodGet, PathMutate, http.StatusMethodNotAllowed},
		{http.MethodPost, "/elsewhere", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
}

func TestHandlerBodyLimit(t *testing.T) {
	h := NewHandler(fixtureTable(), nil)
	big := bytes.Repeat([]byte(" "), maxReviewBytes+1)
	resp := post(t, h, big)
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "limit") {
		t.Errorf("oversized body: %+v", resp)
	}
}

func TestEscapePointer(t *testing.T) {
	for in, want := range map[string]string{
		"istio.io/rev": "istio.io~1rev",
		"a~b/c":        "a~0b~1c",
		"~1":           "~01",
		"plain":        "plain",
	} {
		if got := escapePointer(in); got != want {
			t.Errorf("escapePointer(%q) = %q, want %q", in, got, want)
		}
	}
}

// post sends body to h's PathMutate and decodes the AdmissionReview answer.
func post(t *testing.T, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathMutate, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("failed to decode response %s: %v", rec.Body, err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("response is no AdmissionReview v1: %s", rec.Body)
	}
	return out.Response
}

// patchedRev applies patch (if any) to the review's object and returns the
// template's istio.io/rev at labels.
func patchedRev(t *testing.T, review, patch []byte, labels []string) string {
	t.Helper()
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(review, &in); err != nil {
		t.Fatal(err)
	}
	obj := in.Request.Object.Raw
	if len(patch) > 0 {
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatalf("failed to decode patch %s: %v", patch, err)
		}
		if obj, err = p.Apply(obj); err != nil {
			t.Fatalf("failed to apply patch %s: %v", patch, err)
		}
	}
	var u map[string]any
	if err := json.Unmarshal(obj, &u); err != nil {
		t.Fatal(err)
	}
	rev, _, err := unstructured.NestedString(u, append(labels, istio.LabelRev)...)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// emptyAssignments assigns "" to everything, as a buggy Assignments might.
type emptyAssignments struct{}

func (emptyAssignments) Assigned(string, string, string, string) (string, bool) { return "", true }

func TestHandlerIgnoresEmptyRevision(t *testing.T) {
	h := NewHandler(emptyAssignments{}, nil)
	if resp := post(t, h, reviewJSON(t, admissionv1.Update, deploymentGVK, deployment())); len(resp.Patch) > 0 {
		t.Errorf("patch %s for an empty revision", resp.Patch)
	}
}
