package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// bundles records every CA bundle a Rotator publishes.
type bundles struct {
	sync.Mutex
	all [][]byte
}

func (b *bundles) publish(_ context.Context, ca []byte) error {
	b.Lock()
	defer b.Unlock()
	b.all = append(b.all, bytes.Clone(ca))
	return nil
}

func (b *bundles) last() []byte {
	b.Lock()
	defer b.Unlock()
	return b.all[len(b.all)-1]
}

// verifies reports whether the PEM certificate chains to the bundle.
func verifies(t *testing.T, certPEM, bundle []byte, at time.Time) bool {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	_, err = c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}

func countCAs(bundle []byte) int {
	n := 0
	for rest := bundle; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
	}
}

func secretOf(t *testing.T, r *Rotator) *corev1.Secret {
	t.Helper()
	s, err := r.Kube.CoreV1().Secrets(r.Namespace).Get(t.Context(), r.Secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRotateOverlap: at every moment of a rotation the certificate any
// replica may serve (the old one until it reloads, then the new one)
// verifies against the bundle the API server holds, and the bundle never
// grows past two CAs over repeated rotations.
func TestRotateOverlap(t *testing.T) {
	pub := &bundles{}
	r := &Rotator{Kube: fake.NewClientset(), Namespace: "ns", Secret: "cert", Hosts: []string{"127.0.0.1"},
		Publish: pub.publish, Propagation: time.Millisecond}
	if _, err := r.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 3 {
		old := secretOf(t, r).Data[corev1.TLSCertKey]
		staged, err := r.stage(t.Context(), secretOf(t, r), now)
		if err != nil {
			t.Fatal(err)
		}
		// Phase 1: the API server trusts old and new before anyone serves new.
		if !verifies(t, old, pub.last(), now) || !verifies(t, staged.Data[nextCertKey], pub.last(), now) {
			t.Fatalf("rotation %d: the staged bundle does not cover the old and the next certificate", i)
		}
		if _, err := r.promote(t.Context(), staged); err != nil {
			t.Fatal(err)
		}
		s := secretOf(t, r)
		// Phase 2: the new one serves; a replica still on the old one is fine.
		if !verifies(t, s.Data[corev1.TLSCertKey], pub.last(), now) || !verifies(t, old, pub.last(), now) {
			t.Fatalf("rotation %d: after promotion the bundle does not cover both certificates", i)
		}
		if bytes.Equal(s.Data[corev1.TLSCertKey], old) {
			t.Fatalf("rotation %d: serving certificate unchanged", i)
		}
		if n := countCAs(pub.last()); n != 2 {
			t.Errorf("rotation %d: bundle holds %d CAs, want 2", i, n)
		}
		if _, ok := s.Data[nextCertKey]; ok {
			t.Errorf("rotation %d: next.crt left in the Secret", i)
		}
	}
}

// TestCheckRenewsBeforeExpiry walks a fake clock: nothing happens while the
// certificate has more than RenewBefore left, then Check stages a rotation,
// leaves it staged for Propagation, and promotes it.
func TestCheckRenewsBeforeExpiry(t *testing.T) {
	pub := &bundles{}
	t0 := time.Now()
	clock := t0
	r := &Rotator{Kube: fake.NewClientset(), Namespace: "ns", Secret: "cert", Hosts: []string{"meshroll-webhook.meshroll-system.svc"},
		Publish: pub.publish, Propagation: time.Minute, RenewBefore: 24 * time.Hour, Validity: 72 * time.Hour,
		Now: func() time.Time { return clock }}
	if _, err := r.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := secretOf(t, r).Data[corev1.TLSCertKey]
	step := func(d time.Duration, wantStaged bool) *corev1.Secret {
		t.Helper()
		clock = clock.Add(d)
		s, err := r.Check(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, staged := nextSince(s); staged != wantStaged {
			t.Fatalf("at t0+%s: staged = %v, want %v", clock.Sub(t0), staged, wantStaged)
		}
		return s
	}
	if s := step(300*24*time.Hour, false); !bytes.Equal(s.Data[corev1.TLSCertKey], first) {
		t.Fatal("certificate renewed with 65 days left")
	}
	step(65*24*time.Hour-23*time.Hour, true) // 23h left: stage
	n := len(pub.all)
	step(30*time.Second, true) // still propagating
	s := step(time.Minute, false)
	if bytes.Equal(s.Data[corev1.TLSCertKey], first) {
		t.Fatal("certificate not renewed 23h before expiry")
	}
	if !verifies(t, s.Data[corev1.TLSCertKey], pub.last(), clock) || !verifies(t, first, pub.last(), clock) {
		t.Error("the bundle after promotion does not cover both certificates")
	}
	if len(pub.all) <= n {
		t.Error("promotion did not publish the bundle again")
	}
}

// TestRotateWaitsForPropagation: Rotate returns only after Propagation, with
// the new certificate serving; a cancelled context stops it staged, and the
// next Check finishes the job.
func TestRotateWaitsForPropagation(t *testing.T) {
	pub := &bundles{}
	r := &Rotator{Kube: fake.NewClientset(), Namespace: "ns", Secret: "cert", Hosts: []string{"127.0.0.1"},
		Publish: pub.publish, Propagation: 200 * time.Millisecond}
	if _, err := r.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := secretOf(t, r).Data[corev1.TLSCertKey]
	start := time.Now()
	if err := r.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < r.Propagation {
		t.Errorf("Rotate() returned after %s, before the %s propagation", took, r.Propagation)
	}
	after := secretOf(t, r).Data[corev1.TLSCertKey]
	if bytes.Equal(before, after) {
		t.Fatal("Rotate() left the serving certificate unchanged")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Rotate(ctx); err == nil {
		t.Fatal("Rotate() with a cancelled context succeeded")
	}
	if _, staged := nextSince(secretOf(t, r)); !staged {
		t.Fatal("a cancelled Rotate() left nothing staged")
	}
	time.Sleep(r.Propagation)
	s, err := r.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, staged := nextSince(s); staged || bytes.Equal(s.Data[corev1.TLSCertKey], after) {
		t.Error("Check() did not finish the interrupted rotation")
	}
}

// TestKeeperLoad: the keeper serves what the Secret holds and reloads only
// on a change.
func TestKeeperLoad(t *testing.T) {
	certPEM, keyPEM, _, err := issueCert([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeeper(pair)
	s := &corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	if changed, err := k.Load(s); err != nil || !changed {
		t.Fatalf("first Load() = %v, %v; want a change", changed, err)
	}
	if changed, _ := k.Load(s); changed {
		t.Error("Load() of the same Secret reported a change")
	}
	cert2, key2, _, err := issueCert([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = cert2, key2
	if changed, err := k.Load(s); err != nil || !changed {
		t.Fatalf("Load() of a new certificate = %v, %v", changed, err)
	}
	got, _ := k.GetCertificate(nil)
	want, _ := tls.X509KeyPair(cert2, key2)
	if !bytes.Equal(got.Certificate[0], want.Certificate[0]) {
		t.Error("GetCertificate() does not return the reloaded certificate")
	}
	s.Data[corev1.TLSCertKey] = []byte("garbage")
	if _, err := k.Load(s); err == nil {
		t.Error("Load() of garbage succeeded")
	}
	if got2, _ := k.GetCertificate(nil); !bytes.Equal(got2.Certificate[0], want.Certificate[0]) {
		t.Error("a failed Load() replaced the served certificate")
	}
}
