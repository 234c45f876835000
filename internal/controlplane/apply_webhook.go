package controlplane

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// clientConfigForms are the two mutually exclusive targets of a webhook's
// clientConfig: the API server refuses an object with both or neither.
var clientConfigForms = [2]string{"url", "service"}

// clientConfigTakeBack returns the JSON patch that swaps, in the live webhook
// configuration, every client config of the form meshroll does not write for
// the one it does (a url someone put where the chart names istiod's Service,
// or the reverse), or nil when there is none. Server-side apply cannot do it:
// the foreign form belongs to another field manager, so an apply would merge
// both forms into one invalid clientConfig and fail ("exactly one of url or
// service is required"), leaving the webhook pointing wherever it was
// redirected. The patch tests the resourceVersion it was computed from.
func clientConfigTakeBack(live, want *unstructured.Unstructured) ([]byte, error) {
	switch want.GetKind() {
	case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
	default:
		return nil, nil
	}
	wanted := map[string]map[string]any{}
	hooks, _, _ := unstructured.NestedSlice(want.Object, "webhooks")
	for _, raw := range hooks {
		if h, ok := raw.(map[string]any); ok {
			name, _ := h["name"].(string)
			cc, _ := h["clientConfig"].(map[string]any)
			wanted[name] = cc
		}
	}
	ops := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": live.GetResourceVersion()}}
	liveHooks, _, _ := unstructured.NestedSlice(live.Object, "webhooks")
	for i, raw := range liveHooks {
		h, _ := raw.(map[string]any)
		name, _ := h["name"].(string)
		cc, _ := h["clientConfig"].(map[string]any)
		want, ok := wanted[name]
		if !ok || cc == nil || want == nil {
			continue
		}
		for j, form := range clientConfigForms {
			other := clientConfigForms[1-j]
			if _, has := cc[form]; !has {
				continue
			}
			if _, wants := want[form]; wants {
				continue
			}
			target, wants := want[other]
			if !wants {
				continue
			}
			base := fmt.Sprintf("/webhooks/%d/clientConfig/", i)
			ops = append(ops,
				map[string]any{"op": "remove", "path": base + form},
				map[string]any{"op": "add", "path": base + other, "value": target})
		}
	}
	if len(ops) == 1 {
		return nil, nil
	}
	return json.Marshal(ops)
}

// takeBackClientConfig applies clientConfigTakeBack's patch, if any, and
// reports whether it changed something.
func (a *Applier) takeBackClientConfig(ctx context.Context, ri dynamic.ResourceInterface, live, want *unstructured.Unstructured) (bool, error) {
	patch, err := clientConfigTakeBack(live, want)
	if err != nil || patch == nil {
		return false, err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	if a.dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Patch(ctx, want.GetName(), types.JSONPatchType, patch, opts); err != nil {
		return false, fmt.Errorf("failed to take back the client config of %s %q: %w", want.GetKind(), want.GetName(), err)
	}
	return true, nil
}
