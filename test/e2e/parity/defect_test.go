package parity

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
)

// TestPurgeSparesMeshrollTags is issue #16's defect 1: `istioctl uninstall
// --purge` deletes whatever carries operator.istio.io/component, and
// istioctl's own tags carry no installer label (tags are user-managed), so a
// meshroll tag that kept them was purged — and with it injection for every
// namespace on the tag — while istioctl's survived.
func TestPurgeSparesMeshrollTags(t *testing.T) {
	e := newEnv(t)
	version := sandbox.IstioctlReleases()[0]
	ctl := builtIstioctl(t, version)
	rev := e.install(t, version)
	const tag = "defect-one"
	e.setTag(t, tag, rev)
	e.setTag(t, istio.DefaultRevision, rev)

	objects := []objectRef{
		{kind: "MutatingWebhookConfiguration", name: istio.TagWebhookPrefix + tag},
		{kind: "MutatingWebhookConfiguration", name: istio.TagWebhookPrefix + istio.DefaultRevision},
		{kind: "ValidatingWebhookConfiguration", name: controlplane.DefaultValidatorName},
	}
	for _, ref := range objects {
		live := e.get(t, ref)
		for k, v := range live.GetLabels() {
			if strings.Contains(k, "operator.istio.io") {
				t.Errorf("%s keeps installer label %s=%s: istioctl drops every operator.istio.io label from a tag's objects", ref, k, v)
			}
		}
	}
	pruned := purgeDryRun(t, ctl)
	for _, ref := range objects {
		if pruned[ref] {
			t.Errorf("istioctl %s uninstall --purge would delete meshroll's %s", version, ref)
		}
	}
}

// TestDefaultValidatorSkipsRevisionedConfig is issue #16's defect 2: the
// default tag's validator must leave config labelled istio.io/rev to that
// revision's own validator. Otherwise, in the middle of an upgrade, the old
// default revision's istiod judges config written for the new canary and
// rejects what only the newer version understands. A stand-in for that old
// istiod (it rejects everything) answers istiod-default-validator here; the
// tag set that ends the test must take the validator back from it.
func TestDefaultValidatorSkipsRevisionedConfig(t *testing.T) {
	e := newEnv(t)
	releases := sandbox.IstioctlReleases()
	old := e.install(t, releases[0])
	canary := e.install(t, releases[len(releases)-1])
	e.setTag(t, istio.DefaultRevision, old)
	defer e.setTag(t, istio.DefaultRevision, old) // takes the client config back

	const reason = "the old default revision cannot validate this"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false,
			Result: &metav1.Status{Message: reason}}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	vwcs := e.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	vwc, err := vwcs.Get(t.Context(), controlplane.DefaultValidatorName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Without its istio.io/rev label istiod no longer manages the validator
	// (it follows the validators labelled with its revision and would patch
	// its own CA back in); tag set below puts label and client config back.
	delete(vwc.Labels, istio.LabelRev)
	fail := admissionregv1.Fail
	for i := range vwc.Webhooks {
		url := srv.URL + "/validate"
		vwc.Webhooks[i].ClientConfig = admissionregv1.WebhookClientConfig{URL: &url, CABundle: ca}
		vwc.Webhooks[i].FailurePolicy = &fail
	}
	if _, err := vwcs.Update(t.Context(), vwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	const ns = "defect-two"
	_, err = e.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	vs := e.dyn.Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}).Namespace(ns)
	create := func(name string, labels map[string]string) error {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{"hosts": []any{"reviews"}, "http": []any{
				map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}}}},
			}},
		}}
		obj.SetLabels(labels)
		_, err := vs.Create(t.Context(), obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	// The stand-in validator is live: config of the default revision reaches it.
	if err := create("unlabelled", nil); err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("unlabelled VirtualService: err = %v, want the default validator's rejection", err)
	}
	if err := create("for-canary", map[string]string{istio.LabelRev: canary}); err != nil {
		t.Errorf("VirtualService labelled %s=%s was judged by the default tag's validator (revision %s): %v",
			istio.LabelRev, canary, old, err)
	}
}
