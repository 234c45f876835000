package injector

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshroll/meshroll/internal/istio"
)

const (
	fixtureRev    = "1-23-2"
	fixtureImage  = "docker.io/istio/proxyv2:1.23.2"
	fixtureValues = `{"global":{"hub":"docker.io/istio","tag":"1.23.2","proxy":{"image":"proxyv2","resources":{"requests":{"cpu":"100m"}}},"meshID":"","network":""},"revision":"1-23-2","sidecarInjectorWebhook":{"rewriteAppHTTPProbe":true}}`
)

// fixtureConfigMaps is istio-system as the lister sees it: the 1-23-2
// revision's injector ConfigMap, the default revision's and unrelated ones.
func fixtureConfigMaps(t testing.TB) corev1listers.ConfigMapNamespaceLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-1-23-2", Namespace: istio.SystemNamespace, ResourceVersion: "7"},
			Data: map[string]string{"values": fixtureValues, "config": "policy: enabled"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector", Namespace: istio.SystemNamespace, ResourceVersion: "3"},
			Data: map[string]string{"values": `{"global":{"hub":"gcr.io/istio-release","tag":"1.22.5"}}`}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-broken", Namespace: istio.SystemNamespace},
			Data: map[string]string{"values": `{"global":{}}`}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-novalues", Namespace: istio.SystemNamespace}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-1-23-2", Namespace: "elsewhere"},
			Data: map[string]string{"values": `{"global":{"hub":"wrong","tag":"wrong"}}`}},
	} {
		if err := idx.Add(cm); err != nil {
			t.Fatal(err)
		}
	}
	return corev1listers.NewConfigMapLister(idx).ConfigMaps(istio.SystemNamespace)
}

func testHandler(t testing.TB) *handler {
	return newHandler(fixtureConfigMaps(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func boolPtr(b bool) *bool { return &b }

// deploymentPod is a pod as a ReplicaSet controller sends it: no name, no
// namespace, only generateName and an owner.
func deploymentPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "web-7d9f8c6b5-",
			Labels:       map[string]string{"pod-template-hash": "7d9f8c6b5", "tier": "front"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8c6b5", UID: "rs-uid", Controller: boolPtr(true),
			}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

// barePod is a named pod with labels, annotations, an init container and a
// volume, so every patch path takes its "append" form.
func barePod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "reviews", Namespace: "bookinfo",
			Labels:      map[string]string{"app": "reviews", "version": "v2", "a/b~c": "x"},
			Annotations: map[string]string{"team": "books"},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "setup", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "reviews", Image: "reviews:v2"}, {Name: "helper", Image: "helper"}},
			Volumes:        []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

func withPod(p *corev1.Pod, mutate func(*corev1.Pod)) *corev1.Pod {
	mutate(p)
	return p
}

// podReview wraps pod in the AdmissionReview the API server would POST.
func podReview(t testing.TB, namespace string, pod *corev1.Pod) *admissionv1.AdmissionReview {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("uid-" + namespace),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: namespace,
			Name:      pod.Name,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
}
