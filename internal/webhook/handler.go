package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Paths the Handler serves.
const (
	// PathMutate receives AdmissionReviews from the API server.
	PathMutate = "/mutate"
	// PathHealthz answers 200 for liveness and readiness probes.
	PathHealthz = "/healthz"
)

// maxReviewBytes bounds a request body; the API server's own object limit is
// about 3 MiB, so anything larger is not a genuine admission call.
const maxReviewBytes = 8 << 20

// admissionAPIVersion is the only AdmissionReview version the webhook
// registers for (admissionReviewVersions: [v1]).
const admissionAPIVersion = "admission.k8s.io/v1"

// Handler answers the API server's admission calls for workloads. It decodes
// only the few fields it decides on, looks the workload up in Assignments and
// answers with a JSONPatch for the pod template's istio.io/rev when it differs
// from the assigned revision. It never denies: a request it cannot understand
// is allowed unchanged with a warning, because a broken webhook must not block
// anybody's deploy.
type Handler struct {
	assignments Assignments
	log         *slog.Logger

	requests  atomic.Uint64
	patched   atomic.Uint64
	malformed atomic.Uint64
}

// Stats counts what a Handler did since it was made, for a metrics endpoint or
// logs; plain counters keep the package free of a global metrics registry.
type Stats struct {
	// Requests is every AdmissionReview received on PathMutate.
	Requests uint64
	// Patched is how many answers carried a patch.
	Patched uint64
	// Malformed is how many requests could not be decoded (answered allowed).
	Malformed uint64
}

// NewHandler returns a Handler deciding from a. A nil log discards.
func NewHandler(a Assignments, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{assignments: a, log: log}
}

// Stats returns a snapshot of the counters.
func (h *Handler) Stats() Stats {
	return Stats{Requests: h.requests.Load(), Patched: h.patched.Load(), Malformed: h.malformed.Load()}
}

// ServeHTTP routes PathMutate and PathHealthz.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathHealthz:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	case PathMutate:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.mutate(w, r)
	default:
		http.NotFound(w, r)
	}
}

// mutate decodes one AdmissionReview and writes the answer.
func (h *Handler) mutate(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	resp := admissionv1.AdmissionResponse{Allowed: true}
	var in reviewIn
	body, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err == nil && in.Request == nil {
		err = errors.New("no request")
	}
	if err != nil {
		h.malformed.Add(1)
		if in.Request != nil {
			resp.UID = in.Request.UID
		}
		msg := fmt.Sprintf("meshroll revision assignment skipped: failed to decode AdmissionReview: %v", err)
		resp.Warnings = []string{msg}
		resp.Result = &metav1.Status{Message: msg}
		h.log.Warn("malformed admission request", "remote", r.RemoteAddr, "err", err)
		h.write(w, &resp)
		return
	}
	req := in.Request
	resp.UID = req.UID
	d := decide(req, h.assignments)
	if d.patch != nil {
		h.patched.Add(1)
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = d.patch, &pt
		resp.Warnings = []string{d.warning()}
		h.log.Info("assigned revision", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", d.name,
			"operation", req.Operation, "from", d.from, "to", d.to, "upgrade", d.upgrade, "uid", req.UID)
	} else {
		h.log.Debug("left unchanged", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", d.name,
			"operation", req.Operation, "reason", d.reason, "uid", req.UID)
	}
	h.write(w, &resp)
}

// write sends resp wrapped in an AdmissionReview v1.
func (h *Handler) write(w http.ResponseWriter, resp *admissionv1.AdmissionResponse) {
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionAPIVersion, Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		// Cannot happen with these types; the API server treats the 500 as a
		// webhook failure and, failing open, admits the object.
		h.log.Error("failed to encode admission response", "err", err)
		http.Error(w, "failed to encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(out); err != nil {
		h.log.Debug("failed to write admission response", "err", err)
	}
}

// readBody reads at most maxReviewBytes, sized from Content-Length when known
// so a typical review costs one buffer allocation.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, errors.New("empty body")
	}
	n := r.ContentLength
	if n > maxReviewBytes {
		return nil, fmt.Errorf("failed to read body: %d bytes exceed the %d byte limit", n, maxReviewBytes)
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(n, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxReviewBytes+1)); err != nil {
		return nil, fmt.Errorf("failed to read body: %w", err)
	}
	if buf.Len() > maxReviewBytes {
		return nil, fmt.Errorf("failed to read body: more than %d bytes", maxReviewBytes)
	}
	return buf.Bytes(), nil
}

// reviewIn is the part of an AdmissionReview the webhook reads. Decoding into
// it skips the pod spec, annotations and status instead of building them.
type reviewIn struct {
	Request *requestIn `json:"request"`
}

// requestIn is the part of an AdmissionRequest the webhook reads.
type requestIn struct {
	UID         types.UID               `json:"uid"`
	Kind        metav1.GroupVersionKind `json:"kind"`
	SubResource string                  `json:"subResource"`
	Name        string                  `json:"name"`
	Namespace   string                  `json:"namespace"`
	Operation   admissionv1.Operation   `json:"operation"`
	Object      *workloadIn             `json:"object"`
}

// workloadIn covers both template locations: spec.template for apps kinds and
// spec.jobTemplate.spec.template for CronJob.
type workloadIn struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Template    *templateIn `json:"template"`
		JobTemplate *struct {
			Spec struct {
				Template *templateIn `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// templateIn is a pod template's metadata. Pointers and nil maps tell "absent"
// from "empty", which decides the shape of the patch.
type templateIn struct {
	Metadata *struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// template returns the pod template of w and the JSON pointer to it for kind,
// or false when kind is not one the webhook handles.
func (w *workloadIn) template(gvk metav1.GroupVersionKind) (*templateIn, string, bool) {
	switch {
	case gvk.Group == "apps" && (gvk.Kind == "Deployment" || gvk.Kind == "StatefulSet" || gvk.Kind == "DaemonSet"):
		return w.Spec.Template, "/spec/template", true
	case gvk.Group == "batch" && gvk.Kind == "CronJob":
		if w.Spec.JobTemplate == nil {
			return nil, "/spec/jobTemplate/spec/template", true
		}
		return w.Spec.JobTemplate.Spec.Template, "/spec/jobTemplate/spec/template", true
	default:
		return nil, "", false
	}
}
