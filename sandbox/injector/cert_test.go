package injector

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

func TestCertsReusedAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first, ca1, err := loadOrCreateCerts(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	second, ca2, err := loadOrCreateCerts(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Error("a restart issued new certificates instead of reusing them")
	}
	info, err := os.Stat(filepath.Join(dir, caKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}

	// Close to the serving cert's expiry it is re-issued under the same CA.
	third, ca3, err := loadOrCreateCerts(dir, now.Add(certValidity-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1, ca3) {
		t.Error("CA changed although it was still valid")
	}
	if bytes.Equal(first.Certificate[0], third.Certificate[0]) {
		t.Error("an expiring serving certificate was reused")
	}

	// A corrupt serving cert is replaced, the CA kept.
	if err := os.WriteFile(filepath.Join(dir, servingCert), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ca4, err := loadOrCreateCerts(dir, now); err != nil || !bytes.Equal(ca1, ca4) {
		t.Errorf("recovering from a corrupt serving cert: err %v, CA kept %v", err, bytes.Equal(ca1, ca4))
	}
}

func TestServingCertShape(t *testing.T) {
	pair, caPEM, err := loadOrCreateCerts(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA bundle holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("serving cert does not verify for 127.0.0.1: %v", err)
	}
	if leaf.IsCA {
		t.Error("serving cert is a CA")
	}
}

// TestHTTPS serves the handler with the generated certificate on 127.0.0.1
// and calls it as the API server does: over TLS, trusting only the CA bundle.
func TestHTTPS(t *testing.T) {
	pair, caPEM, err := loadOrCreateCerts(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(testHandler(t))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL + PathHealthz)
	if err != nil {
		t.Fatalf("GET healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz status = %d", resp.StatusCode)
	}

	body, _ := json.Marshal(podReview(t, "apps", deploymentPod()))
	resp, err = client.Post(srv.URL+PathInjectPrefix+fixtureRev, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST review: %v", err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || !out.Response.Allowed || len(out.Response.Patch) == 0 {
		t.Fatalf("response = %+v, want allowed with a patch", out.Response)
	}

	// A client that does not trust the CA must fail: the bundle is what matters.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(srv.URL + PathHealthz); err == nil {
		t.Error("a client without the CA bundle was trusted")
	}
}
