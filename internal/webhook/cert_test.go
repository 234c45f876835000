package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnsureCert(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hosts := []string{"meshroll-webhook.meshroll-system.svc", "127.0.0.1"}
	tests := []struct {
		name      string
		secondAt  time.Time
		hosts2    []string
		wantReuse bool
	}{
		{name: "reused when valid", secondAt: now.Add(24 * time.Hour), hosts2: hosts, wantReuse: true},
		{name: "reused with a subset of hosts", secondAt: now, hosts2: hosts[1:], wantReuse: true},
		{name: "renewed inside the last 30 days", secondAt: now.Add(DefaultCertValidity - DefaultRenewBefore + time.Hour), hosts2: hosts},
		{name: "renewed for a new host", secondAt: now, hosts2: append([]string{"other.example"}, hosts...)},
		{name: "renewed when issued in the future", secondAt: now.Add(-2 * clockSkew), hosts2: hosts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kube := fake.NewClientset()
			pair1, ca1, err := EnsureCert(t.Context(), kube, "meshroll-system", "webhook-tls", hosts, now)
			if err != nil {
				t.Fatal(err)
			}
			checkServing(t, pair1.Certificate[0], ca1, hosts, now)
			pair2, ca2, err := EnsureCert(t.Context(), kube, "meshroll-system", "webhook-tls", tt.hosts2, tt.secondAt)
			if err != nil {
				t.Fatal(err)
			}
			checkServing(t, pair2.Certificate[0], ca2, tt.hosts2, tt.secondAt)
			reused := bytes.Equal(pair1.Certificate[0], pair2.Certificate[0]) && bytes.Equal(ca1, ca2)
			if reused != tt.wantReuse {
				t.Errorf("reused = %v, want %v", reused, tt.wantReuse)
			}
			s, err := kube.CoreV1().Secrets("meshroll-system").Get(t.Context(), "webhook-tls", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Type != corev1.SecretTypeTLS || !bytes.Equal(s.Data[CACertKey], ca2) {
				t.Errorf("secret type %q, ca.crt matches returned CA: %v", s.Type, bytes.Equal(s.Data[CACertKey], ca2))
			}
		})
	}
}

func TestEnsureCertRepairsGarbage(t *testing.T) {
	now := time.Now()
	kube := fake.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-tls", Namespace: "ns", Labels: map[string]string{"team": "mesh"}},
		Data:       map[string][]byte{corev1.TLSCertKey: []byte("junk")},
	})
	pair, ca, err := EnsureCert(t.Context(), kube, "ns", "webhook-tls", []string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	checkServing(t, pair.Certificate[0], ca, []string{"127.0.0.1"}, now)
	s, err := kube.CoreV1().Secrets("ns").Get(t.Context(), "webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Labels["team"] != "mesh" || s.Labels["app.kubernetes.io/managed-by"] != FieldManager {
		t.Errorf("labels after repair = %v", s.Labels)
	}
}

// TestEnsureCertRace starts several EnsureCert calls on one empty Secret: all
// must return the certificate that won, none may overwrite it.
func TestEnsureCertRace(t *testing.T) {
	now := time.Now()
	kube := fake.NewClientset()
	const n = 8
	cas := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, ca, err := EnsureCert(t.Context(), kube, "ns", "webhook-tls", []string{"127.0.0.1"}, now)
			if err != nil {
				t.Error(err)
			}
			cas[i] = ca
		})
	}
	wg.Wait()
	s, err := kube.CoreV1().Secrets("ns").Get(t.Context(), "webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ca := range cas {
		if !bytes.Equal(ca, s.Data[CACertKey]) {
			t.Errorf("starter %d returned a CA that is not the stored one", i)
		}
	}
}

func TestEnsureCertNoHosts(t *testing.T) {
	if _, _, err := EnsureCert(t.Context(), fake.NewClientset(), "ns", "s", nil, time.Now()); err == nil {
		t.Error("EnsureCert() with no hosts succeeded")
	}
}

// checkServing verifies der as a P-256 serving certificate for hosts, chained
// to caPEM and valid for more than 30 days after now.
func checkServing(t *testing.T, der, caPEM []byte, hosts []string, now time.Time) {
	t.Helper()
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatal("CA bundle is no PEM")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CA: %v, IsCA %v", err, err == nil && ca.IsCA)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, at := range []time.Time{now, now.Add(DefaultRenewBefore)} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify at %s: %v", at, err)
		}
	}
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Error(err)
		}
	}
}
