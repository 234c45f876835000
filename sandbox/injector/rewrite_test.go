package injector

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const revisionInjectorYAML = `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: istio-sidecar-injector-1-23-2
  labels:
    istio.io/rev: 1-23-2
    app: sidecar-injector
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  admissionReviewVersions: [v1]
  clientConfig:
    service: {name: istiod-1-23-2, namespace: istio-system, path: /inject, port: 443}
  failurePolicy: Fail
  namespaceSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: In, values: [1-23-2]}
    - {key: istio-injection, operator: DoesNotExist}
  objectSelector:
    matchExpressions:
    - {key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  sideEffects: None
- name: rev.object.sidecar-injector.istio.io
  admissionReviewVersions: [v1]
  clientConfig:
    service: {name: istiod-1-23-2, namespace: istio-system, path: /inject, port: 443}
  failurePolicy: Fail
  namespaceSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: DoesNotExist}
  objectSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: In, values: [1-23-2]}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  sideEffects: None
`

func parseObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("failed to parse fixture: %v", err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestRewrite(t *testing.T) {
	ep := Endpoint{URL: "https://127.0.0.1:9443", CABundle: []byte("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n")}
	ca := base64.StdEncoding.EncodeToString(ep.CABundle)
	tests := []struct {
		name        string
		doc         string
		wantChanged bool
		wantURLs    []string
		wantService string
	}{
		{
			name:        "revision injector",
			doc:         revisionInjectorYAML,
			wantChanged: true,
			wantURLs:    []string{"https://127.0.0.1:9443/inject/rev/1-23-2", "https://127.0.0.1:9443/inject/rev/1-23-2"},
			wantService: "istio-system/istiod-1-23-2:443/inject",
		},
		{
			name: "default injector without rev label and default port",
			doc: `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: istio-sidecar-injector}
webhooks:
- name: namespace.sidecar-injector.istio.io
  clientConfig: {service: {name: istiod, namespace: istio-system, path: "/inject/cluster/Kubernetes/net/network1"}}
`,
			wantChanged: true,
			wantURLs:    []string{"https://127.0.0.1:9443/inject/rev/default"},
			wantService: "istio-system/istiod:443/inject/cluster/Kubernetes/net/network1",
		},
		{
			name: "validator",
			doc: `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: istio-validator-1-23-2-istio-system, labels: {istio.io/rev: 1-23-2}}
webhooks:
- name: rev.validation.istio.io
  clientConfig: {service: {name: istiod-1-23-2, namespace: istio-system, path: /validate, port: 15017}}
  failurePolicy: Ignore
`,
			wantChanged: true,
			wantURLs:    []string{"https://127.0.0.1:9443/validate"},
			wantService: "istio-system/istiod-1-23-2:15017/validate",
		},
		{
			name: "differing services are all recorded",
			doc: `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: mixed, labels: {istio.io/rev: canary}}
webhooks:
- name: a
  clientConfig: {service: {name: istiod-canary, namespace: istio-system, path: /inject}}
- name: b
  clientConfig: {url: "https://example.invalid/x"}
- name: c
  clientConfig: {service: {name: istiod-canary, namespace: other, port: 8443}}
`,
			wantChanged: true,
			wantURLs:    []string{"https://127.0.0.1:9443/inject/rev/canary", "https://example.invalid/x", "https://127.0.0.1:9443/inject/rev/canary"},
			wantService: "istio-system/istiod-canary:443/inject,other/istiod-canary:8443",
		},
		{
			name: "already url",
			doc: `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: done}
webhooks:
- name: a
  clientConfig: {url: "https://127.0.0.1:9443/inject/rev/default"}
`,
			wantURLs: []string{"https://127.0.0.1:9443/inject/rev/default"},
		},
		{
			name: "not a webhook configuration",
			doc: `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio-sidecar-injector}
data: {values: "{}"}
`,
		},
		{
			name: "webhook kind of another group",
			doc: `
apiVersion: example.com/v1
kind: MutatingWebhookConfiguration
metadata: {name: imposter}
webhooks:
- clientConfig: {service: {name: s, namespace: n}}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := parseObject(t, tt.doc)
			before := obj.DeepCopy()
			changed, err := Rewrite(obj, ep)
			if err != nil {
				t.Fatalf("Rewrite() error = %v", err)
			}
			if changed != tt.wantChanged {
				t.Errorf("Rewrite() changed = %v, want %v", changed, tt.wantChanged)
			}
			if !changed {
				if diff := cmp.Diff(before.Object, obj.Object); diff != "" {
					t.Errorf("unchanged object was modified (-before +after):\n%s", diff)
				}
			}
			hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
			var urls []string
			for _, h := range hooks {
				hook := h.(map[string]any)
				u, _, _ := unstructured.NestedString(hook, "clientConfig", "url")
				urls = append(urls, u)
				if _, has, _ := unstructured.NestedMap(hook, "clientConfig", "service"); has && tt.wantChanged {
					t.Errorf("webhook %v still names a service", hook["name"])
				}
			}
			if len(tt.wantURLs) > 0 || len(urls) > 0 && tt.wantChanged {
				if diff := cmp.Diff(tt.wantURLs, urls); diff != "" {
					t.Errorf("urls (-want +got):\n%s", diff)
				}
			}
			if got := obj.GetAnnotations()[AnnotationService]; got != tt.wantService {
				t.Errorf("annotation %s = %q, want %q", AnnotationService, got, tt.wantService)
			}
			if !changed {
				return
			}
			// Everything but clientConfig and the annotation must be as rendered.
			strip := func(u *unstructured.Unstructured) map[string]any {
				c := u.DeepCopy()
				unstructured.RemoveNestedField(c.Object, "metadata", "annotations", AnnotationService)
				if len(c.GetAnnotations()) == 0 {
					unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
				}
				hs, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
				for _, h := range hs {
					delete(h.(map[string]any), "clientConfig")
				}
				_ = unstructured.SetNestedSlice(c.Object, hs, "webhooks")
				return c.Object
			}
			if diff := cmp.Diff(strip(before), strip(obj)); diff != "" {
				t.Errorf("Rewrite() touched more than clientConfig (-before +after):\n%s", diff)
			}
			for _, h := range hooks {
				hook := h.(map[string]any)
				if u, _, _ := unstructured.NestedString(hook, "clientConfig", "url"); u == "https://example.invalid/x" {
					continue
				}
				if got, _, _ := unstructured.NestedString(hook, "clientConfig", "caBundle"); got != ca {
					t.Errorf("caBundle = %q, want %q", got, ca)
				}
			}
			// Rewriting twice changes nothing more.
			again, err := Rewrite(obj, ep)
			if err != nil || again {
				t.Errorf("second Rewrite() = %v, %v; want false, nil", again, err)
			}
		})
	}
}

func TestRewriteRequiresURL(t *testing.T) {
	if _, err := Rewrite(parseObject(t, revisionInjectorYAML), Endpoint{}); err == nil {
		t.Fatal("Rewrite() with an empty endpoint: want error")
	}
}
