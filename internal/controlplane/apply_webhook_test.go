package controlplane

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestTagSetTakesBackRedirectedWebhook: a validator whose clientConfig
// another field manager had switched to a url (the parity test does it, so
// could anyone) made every later `tag set default` fail with "exactly one of
// url or service is required" and leave the webhook redirected; the
// take-back swaps the foreign form for the chart's in one guarded patch.
func TestTagSetTakesBackRedirectedWebhook(t *testing.T) {
	svc := map[string]any{"name": "istiod-1-24-2", "namespace": "istio-system", "path": "/validate"}
	webhook := func(kind string, cc map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"webhooks": []any{
				map[string]any{"name": "other.istio.io", "clientConfig": map[string]any{"service": svc}},
				map[string]any{"name": "validation.istio.io", "clientConfig": cc},
			},
		}}
		u.SetKind(kind)
		u.SetName("istiod-default-validator")
		u.SetResourceVersion("42")
		return u
	}
	want := webhook("ValidatingWebhookConfiguration", map[string]any{"service": svc})
	for _, tc := range []struct {
		name  string
		live  *unstructured.Unstructured
		want  *unstructured.Unstructured
		patch []map[string]any
	}{
		{name: "redirected to a url", live: webhook("ValidatingWebhookConfiguration", map[string]any{"url": "https://rogue/validate", "caBundle": "Y2E="}), want: want,
			patch: []map[string]any{
				{"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
				{"op": "remove", "path": "/webhooks/1/clientConfig/url"},
				{"op": "add", "path": "/webhooks/1/clientConfig/service", "value": svc},
			}},
		{name: "already the chart's form", live: want, want: want},
		{name: "a webhook meshroll does not write", live: webhook("ValidatingWebhookConfiguration", map[string]any{"url": "https://x"}),
			want: &unstructured.Unstructured{Object: map[string]any{"kind": "ValidatingWebhookConfiguration", "webhooks": []any{}}}},
		{name: "not a webhook configuration", live: webhook("ConfigMap", map[string]any{"url": "https://x"}), want: webhook("ConfigMap", map[string]any{"service": svc})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := clientConfigTakeBack(tc.live, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			var got []map[string]any
			if raw != nil {
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatal(err)
				}
			}
			wantJSON, _ := json.Marshal(tc.patch)
			var wantPatch []map[string]any
			_ = json.Unmarshal(wantJSON, &wantPatch)
			if diff := cmp.Diff(wantPatch, got); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
		})
	}
}
