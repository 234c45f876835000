package injector

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// BenchmarkInjectHTTPS is one admission call as the API server makes it:
// over TLS on 127.0.0.1 with a kept-alive connection.
func BenchmarkInjectHTTPS(b *testing.B) {
	pair, caPEM, err := loadOrCreateCerts(b.TempDir(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(newHandler(fixtureConfigMaps(b), slog.New(slog.DiscardHandler)))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	body, err := json.Marshal(podReview(b, "apps", deploymentPod()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(srv.URL+"/inject/rev/1-23-2", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
