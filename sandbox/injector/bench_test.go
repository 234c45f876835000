package injector

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkInject measures one admission call of a Deployment's pod through
// the HTTP handler (decode, lister lookup, patch, encode), without TLS.
func BenchmarkInject(b *testing.B) {
	h := newHandler(fixtureConfigMaps(b), slog.New(slog.DiscardHandler))
	body, err := json.Marshal(podReview(b, "apps", deploymentPod()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject/rev/1-23-2", bytes.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkInjectSkip is the cost for a pod that opts out: the floor of any call.
func BenchmarkInjectSkip(b *testing.B) {
	h := newHandler(fixtureConfigMaps(b), slog.New(slog.DiscardHandler))
	pod := withPod(deploymentPod(), func(p *corev1.Pod) { p.Spec.HostNetwork = true })
	body, err := json.Marshal(podReview(b, "apps", pod))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject/rev/1-23-2", bytes.NewReader(body)))
	}
}
