package injector

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

// maxReviewBytes bounds a request body; the API server's own object limit is
// about 3 MiB.
const maxReviewBytes = 8 << 20

// injectorValuesKey is the injector ConfigMap's data key holding the Helm
// values the injection template sees.
const injectorValuesKey = "values"

// admissionV1beta1 is the older AdmissionReview version Istio's webhooks still list first.
const admissionV1beta1 = "admission.k8s.io/v1beta1"

// handler answers the API server's admission calls. It reads the injector
// ConfigMaps of istio-system through a lister, so a burst of pod creations
// costs no API calls.
type handler struct {
	configMaps corev1listers.ConfigMapNamespaceLister
	log        *slog.Logger

	mu     sync.Mutex
	images map[string]cachedImage // by ConfigMap name
}

// cachedImage remembers the image computed from one version of a ConfigMap,
// so its values JSON is parsed once per change, not once per pod.
type cachedImage struct {
	resourceVersion string
	image           string
}

func newHandler(configMaps corev1listers.ConfigMapNamespaceLister, log *slog.Logger) *handler {
	return &handler{configMaps: configMaps, log: log, images: map[string]cachedImage{}}
}

// ServeHTTP routes the injector's paths.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == PathHealthz:
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	case p == PathValidate:
		h.serveReview(w, r, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Allowed: true}
		})
	case p == "/inject":
		h.serveReview(w, r, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return h.inject(req, istio.DefaultRevision)
		})
	case strings.HasPrefix(p, PathInjectPrefix):
		rev := strings.TrimPrefix(p, PathInjectPrefix)
		if rev == "" || strings.Contains(rev, "/") {
			http.NotFound(w, r)
			return
		}
		h.serveReview(w, r, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return h.inject(req, rev)
		})
	default:
		http.NotFound(w, r)
	}
}

// serveReview decodes an AdmissionReview, lets decide answer its request and
// writes the review back with the request's UID.
func (h *handler) serveReview(w http.ResponseWriter, r *http.Request, decide func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) {
	if r.Method != http.MethodPost {
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, maxReviewBytes)).Decode(&review); err != nil {
		http.Error(w, fmt.Sprintf("failed to decode admission review: %v", err), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(w, "admission review has no request", http.StatusBadRequest)
		return
	}
	resp := decide(review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: responseVersion(review.APIVersion), Kind: "AdmissionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		h.log.Warn("failed to write admission response", "uid", review.Request.UID, "err", err)
	}
}

// responseVersion answers in the version the API server asked in: it picks
// the first of a webhook's admissionReviewVersions it knows, and Istio lists
// v1beta1 first, whose JSON is identical to v1's for what is read here.
func responseVersion(requested string) string {
	if requested == admissionV1beta1 {
		return admissionV1beta1
	}
	return admissionv1.SchemeGroupVersion.String()
}

// inject decides one pod admission for revision rev.
func (h *handler) inject(req *admissionv1.AdmissionRequest, rev string) *admissionv1.AdmissionResponse {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Resource.Resource != "pods" || req.SubResource != "" || req.Operation != admissionv1.Create {
		return allow
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(fmt.Errorf("failed to decode pod in namespace %q: %w", req.Namespace, err))
	}
	// Attributes are built only when a line is written: this runs per pod.
	attrs := func(kv ...any) []any {
		return append([]any{"namespace", req.Namespace, "pod", firstNonEmpty(pod.Name, pod.GenerateName), "revision", rev}, kv...)
	}
	if why := skipReason(&pod); why != "" {
		h.log.Debug("not injecting", attrs("reason", why)...)
		return allow
	}
	image, found, err := h.proxyImage(rev)
	if err != nil {
		h.log.Error("failed to compute proxy image", attrs("err", err)...)
		return deny(err)
	}
	if !found {
		h.log.Warn("not injecting: no injector ConfigMap for revision", attrs("configMap", istio.SystemNamespace+"/"+injectorConfigMapName(rev))...)
		return allow
	}
	patch, err := injectPatch(&pod, rev, image)
	if err != nil {
		return deny(err)
	}
	h.log.Debug("injecting", attrs("image", image)...)
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	return allow
}

// proxyImage is the image revision rev injects now, from its ConfigMap in the
// lister; found is false when the revision has no ConfigMap.
func (h *handler) proxyImage(rev string) (string, bool, error) {
	name := injectorConfigMapName(rev)
	cm, err := h.configMaps.Get(name)
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("failed to get injector config %q: %w", name, err)
	}
	h.mu.Lock()
	c, ok := h.images[name]
	h.mu.Unlock()
	if ok && c.resourceVersion == cm.ResourceVersion && cm.ResourceVersion != "" {
		return c.image, true, nil
	}
	values, ok := cm.Data[injectorValuesKey]
	if !ok {
		return "", false, fmt.Errorf("failed to read injector config %q: no %q key", name, injectorValuesKey)
	}
	image, err := istio.ProxyImage(values)
	if err != nil {
		return "", false, fmt.Errorf("failed to compute proxy image of %q: %w", name, err)
	}
	h.mu.Lock()
	h.images[name] = cachedImage{resourceVersion: cm.ResourceVersion, image: image}
	h.mu.Unlock()
	return image, true, nil
}

// injectorConfigMapName is istio-sidecar-injector-<rev>, without a suffix for
// the default revision.
func injectorConfigMapName(rev string) string {
	if rev == istio.DefaultRevision {
		return istio.InjectorConfigMapPrefix
	}
	return istio.InjectorConfigMapPrefix + "-" + rev
}

func deny(err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Message: err.Error(), Code: http.StatusInternalServerError},
	}
}
