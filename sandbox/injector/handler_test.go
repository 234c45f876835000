package injector

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshroll/meshroll/internal/istio"
)

// review POSTs r to path on h and decodes the answer.
func review(t testing.TB, h http.Handler, path string, r *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	t.Helper()
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", path, rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("failed to decode response: %v", err)
	}
	if out.APIVersion != r.APIVersion || out.Kind != "AdmissionReview" {
		t.Errorf("response type = %s/%s", out.APIVersion, out.Kind)
	}
	if out.Response == nil || out.Response.UID != r.Request.UID {
		t.Fatalf("response does not answer request %q: %+v", r.Request.UID, out.Response)
	}
	return &out
}

// patched applies resp's JSONPatch to the reviewed pod, as the API server would.
func patched(t *testing.T, r *admissionv1.AdmissionReview, resp *admissionv1.AdmissionResponse) *corev1.Pod {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type = %v, want JSONPatch", resp.PatchType)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("failed to decode patch: %v\n%s", err, resp.Patch)
	}
	raw, err := p.Apply(r.Request.Object.Raw)
	if err != nil {
		t.Fatalf("failed to apply patch: %v\n%s", err, resp.Patch)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func proxyOf(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == istio.ProxyContainer {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

const fixtureStatus = `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["workload-socket","credential-socket","workload-certs","istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"1-23-2"}`

func TestInject(t *testing.T) {
	h := testHandler(t)
	tests := []struct {
		name       string
		path       string
		review     *admissionv1.AdmissionReview
		wantDenied bool
		check      func(t *testing.T, pod *corev1.Pod) // nil: no patch expected
	}{
		{
			name:   "deployment pod without name or namespace",
			path:   "/inject/rev/1-23-2",
			review: podReview(t, "apps", deploymentPod()),
			check: func(t *testing.T, pod *corev1.Pod) {
				if diff := cmp.Diff([]string{"app", "istio-proxy"}, containerNames(pod.Spec.Containers)); diff != "" {
					t.Errorf("containers (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"istio-init"}, containerNames(pod.Spec.InitContainers)); diff != "" {
					t.Errorf("init containers (-want +got):\n%s", diff)
				}
				if got := proxyOf(pod).Image; got != fixtureImage {
					t.Errorf("proxy image = %q, want %q", got, fixtureImage)
				}
				if got := pod.Spec.InitContainers[0].Image; got != fixtureImage {
					t.Errorf("init image = %q, want %q", got, fixtureImage)
				}
				wantLabels := map[string]string{
					"pod-template-hash": "7d9f8c6b5", "tier": "front",
					"security.istio.io/tlsMode":       "istio",
					"service.istio.io/canonical-name": "web", "service.istio.io/canonical-revision": "latest",
				}
				if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
					t.Errorf("labels (-want +got):\n%s", diff)
				}
				if got := pod.Annotations[istio.AnnotationSidecarStatus]; got != fixtureStatus {
					t.Errorf("status = %s\nwant     %s", got, fixtureStatus)
				}
				if got := pod.Annotations["kubectl.kubernetes.io/default-container"]; got != "app" {
					t.Errorf("default-container = %q, want app", got)
				}
				if len(pod.Spec.Volumes) != 8 {
					t.Errorf("volumes = %d, want 8", len(pod.Spec.Volumes))
				}
				if pod.Name != "" || pod.GenerateName != "web-7d9f8c6b5-" {
					t.Errorf("name changed: %q / %q", pod.Name, pod.GenerateName)
				}
			},
		},
		{
			name:   "named pod with existing labels, annotations, init containers and volumes",
			path:   "/inject/rev/1-23-2",
			review: podReview(t, "bookinfo", barePod()),
			check: func(t *testing.T, pod *corev1.Pod) {
				if diff := cmp.Diff([]string{"reviews", "helper", "istio-proxy"}, containerNames(pod.Spec.Containers)); diff != "" {
					t.Errorf("containers (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"setup", "istio-init"}, containerNames(pod.Spec.InitContainers)); diff != "" {
					t.Errorf("init containers (-want +got):\n%s", diff)
				}
				wantLabels := map[string]string{
					"app": "reviews", "version": "v2", "a/b~c": "x",
					"security.istio.io/tlsMode":       "istio",
					"service.istio.io/canonical-name": "reviews", "service.istio.io/canonical-revision": "v2",
				}
				if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
					t.Errorf("labels (-want +got):\n%s", diff)
				}
				if pod.Annotations["team"] != "books" || pod.Annotations[istio.AnnotationSidecarStatus] != fixtureStatus {
					t.Errorf("annotations = %v", pod.Annotations)
				}
				if len(pod.Spec.Volumes) != 9 || pod.Spec.Volumes[0].Name != "data" {
					t.Errorf("volumes = %v", pod.Spec.Volumes)
				}
			},
		},
		{
			name: "proxyImage annotation overrides the revision's image",
			path: "/inject/rev/1-23-2",
			review: podReview(t, "apps", withPod(deploymentPod(), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"sidecar.istio.io/proxyImage": "my.registry/proxy:debug"}
			})),
			check: func(t *testing.T, pod *corev1.Pod) {
				if got := proxyOf(pod).Image; got != "my.registry/proxy:debug" {
					t.Errorf("proxy image = %q", got)
				}
			},
		},
		{
			name:   "default revision",
			path:   "/inject/rev/default",
			review: podReview(t, "apps", deploymentPod()),
			check: func(t *testing.T, pod *corev1.Pod) {
				if got := proxyOf(pod).Image; got != "gcr.io/istio-release/proxyv2:1.22.5" {
					t.Errorf("proxy image = %q", got)
				}
				if pod.Annotations[istio.LabelRev] != "default" {
					t.Errorf("rev annotation = %q", pod.Annotations[istio.LabelRev])
				}
				if _, ok := pod.Labels[istio.LabelRev]; ok {
					t.Errorf("injector set the istio.io/rev label; Istio writes only the annotation")
				}
			},
		},
		{
			name:   "bare /inject is the default revision",
			path:   "/inject",
			review: podReview(t, "apps", deploymentPod()),
			check: func(t *testing.T, pod *corev1.Pod) {
				if got := proxyOf(pod).Image; got != "gcr.io/istio-release/proxyv2:1.22.5" {
					t.Errorf("proxy image = %q", got)
				}
			},
		},
		{
			name: "opted out by annotation",
			path: "/inject/rev/1-23-2",
			review: podReview(t, "apps", withPod(deploymentPod(), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"sidecar.istio.io/inject": "false"}
			})),
		},
		{
			name:   "opted out by label",
			path:   "/inject/rev/1-23-2",
			review: podReview(t, "apps", withPod(deploymentPod(), func(p *corev1.Pod) { p.Labels["sidecar.istio.io/inject"] = "no" })),
		},
		{
			name: "already injected (status annotation)",
			path: "/inject/rev/1-23-2",
			review: podReview(t, "apps", withPod(deploymentPod(), func(p *corev1.Pod) {
				p.Annotations = map[string]string{istio.AnnotationSidecarStatus: fixtureStatus}
			})),
		},
		{
			name: "already injected (proxy container)",
			path: "/inject/rev/1-23-2",
			review: podReview(t, "apps", withPod(deploymentPod(), func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: istio.ProxyContainer, Image: "x"})
			})),
		},
		{
			name:   "hostNetwork",
			path:   "/inject/rev/1-23-2",
			review: podReview(t, "apps", withPod(deploymentPod(), func(p *corev1.Pod) { p.Spec.HostNetwork = true })),
		},
		{
			name:   "unknown revision is allowed untouched",
			path:   "/inject/rev/1-99-0",
			review: podReview(t, "apps", deploymentPod()),
		},
		{
			name: "not a create",
			path: "/inject/rev/1-23-2",
			review: func() *admissionv1.AdmissionReview {
				r := podReview(t, "apps", deploymentPod())
				r.Request.Operation = admissionv1.Update
				return r
			}(),
		},
		{
			name:       "values without a hub or tag deny",
			path:       "/inject/rev/broken",
			review:     podReview(t, "apps", deploymentPod()),
			wantDenied: true,
		},
		{
			name:       "ConfigMap without values denies",
			path:       "/inject/rev/novalues",
			review:     podReview(t, "apps", deploymentPod()),
			wantDenied: true,
		},
		{
			name: "v1beta1 review",
			path: "/inject/rev/1-23-2",
			review: func() *admissionv1.AdmissionReview {
				r := podReview(t, "apps", deploymentPod())
				r.APIVersion = "admission.k8s.io/v1beta1"
				return r
			}(),
			check: func(t *testing.T, pod *corev1.Pod) {
				if proxyOf(pod) == nil {
					t.Error("not injected")
				}
			},
		},
		{
			name:   "validate allows everything",
			path:   "/validate",
			review: podReview(t, "apps", deploymentPod()),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := review(t, h, tt.path, tt.review).Response
			if resp.Allowed == tt.wantDenied {
				t.Fatalf("allowed = %v, want %v (%v)", resp.Allowed, !tt.wantDenied, resp.Result)
			}
			if tt.wantDenied {
				if resp.Result == nil || resp.Result.Message == "" {
					t.Error("denial carries no message")
				}
				return
			}
			if tt.check == nil {
				if len(resp.Patch) != 0 || resp.PatchType != nil {
					t.Fatalf("unexpected patch: %s", resp.Patch)
				}
				return
			}
			tt.check(t, patched(t, tt.review, resp))
		})
	}
}

func TestServeHTTP(t *testing.T) {
	h := testHandler(t)
	valid, _ := json.Marshal(podReview(t, "apps", deploymentPod()))
	tests := []struct {
		name, method, path, body string
		wantCode                 int
	}{
		{name: "healthz", method: http.MethodGet, path: "/healthz", wantCode: http.StatusOK},
		{name: "unknown path", method: http.MethodPost, path: "/mutate", body: string(valid), wantCode: http.StatusNotFound},
		{name: "empty revision", method: http.MethodPost, path: "/inject/rev/", body: string(valid), wantCode: http.StatusNotFound},
		{name: "nested revision", method: http.MethodPost, path: "/inject/rev/a/b", body: string(valid), wantCode: http.StatusNotFound},
		{name: "GET review", method: http.MethodGet, path: "/inject/rev/1-23-2", wantCode: http.StatusMethodNotAllowed},
		{name: "bad json", method: http.MethodPost, path: "/inject/rev/1-23-2", body: "{", wantCode: http.StatusBadRequest},
		{name: "no request", method: http.MethodPost, path: "/validate", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, wantCode: http.StatusBadRequest},
		{name: "valid", method: http.MethodPost, path: "/inject/rev/1-23-2", body: string(valid), wantCode: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
		})
	}
}

func TestWorkloadName(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{name: "deployment via hash label", pod: deploymentPod(), want: "web"},
		{name: "replicaset without hash label", pod: withPod(deploymentPod(), func(p *corev1.Pod) { delete(p.Labels, "pod-template-hash") }), want: "web"},
		{name: "statefulset", pod: withPod(deploymentPod(), func(p *corev1.Pod) {
			p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "StatefulSet", "db"
		}), want: "db"},
		{name: "non-controller owner ignored", pod: withPod(deploymentPod(), func(p *corev1.Pod) {
			p.OwnerReferences[0].Controller = nil
			p.Name = "named"
		}), want: "named"},
		{name: "generateName only", pod: withPod(deploymentPod(), func(p *corev1.Pod) { p.OwnerReferences = nil }), want: "web-7d9f8c6b5"},
		{name: "bare pod", pod: barePod(), want: "reviews"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := workloadName(tt.pod); got != tt.want {
				t.Errorf("workloadName() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestImageCacheFollowsConfigMap checks that a changed ConfigMap (new
// resourceVersion) changes the injected image: stale-sidecar detection relies on it.
func TestImageCacheFollowsConfigMap(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-1-23-2", Namespace: istio.SystemNamespace, ResourceVersion: "7"},
		Data:       map[string]string{"values": fixtureValues},
	}
	if err := idx.Add(cm); err != nil {
		t.Fatal(err)
	}
	h := newHandler(corev1listers.NewConfigMapLister(idx).ConfigMaps(istio.SystemNamespace), slog.New(slog.DiscardHandler))
	for _, step := range []struct{ rv, tag, want string }{
		{rv: "7", tag: "1.23.2", want: fixtureImage},
		{rv: "7", tag: "1.23.2", want: fixtureImage}, // cached
		{rv: "8", tag: "1.23.3", want: "docker.io/istio/proxyv2:1.23.3"},
	} {
		next := cm.DeepCopy()
		next.ResourceVersion = step.rv
		next.Data["values"] = strings.ReplaceAll(fixtureValues, "1.23.2", step.tag)
		if err := idx.Update(next); err != nil {
			t.Fatal(err)
		}
		got, found, err := h.proxyImage(fixtureRev)
		if err != nil || !found || got != step.want {
			t.Errorf("at resourceVersion %s: proxyImage() = %q, %v, %v; want %q", step.rv, got, found, err, step.want)
		}
	}
}
