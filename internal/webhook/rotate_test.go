package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
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

// TestCheckRenewsBeforeExpiry walks a fake clock: the first certificate is
// issued for Validity, nothing happens while it has more than RenewBefore
// left, then Check stages a rotation, leaves it staged for Propagation, and
// promotes it.
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
	if got := leaf(secretOf(t, r)).NotAfter; !got.Equal(t0.Add(r.Validity).Truncate(time.Second)) {
		t.Fatalf("first certificate expires %s, want t0+Validity %s", got, t0.Add(r.Validity))
	}
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
	if s := step(47*time.Hour, false); !bytes.Equal(s.Data[corev1.TLSCertKey], first) {
		t.Fatal("certificate renewed with 25h left")
	}
	step(2*time.Hour, true) // 23h left: stage
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

// TestRotatorValidate: settings under which a rotation cannot finish before
// the certificate expires, or that would rotate on every check, are
// refused; the defaults pass.
func TestRotatorValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		r       Rotator
		wantErr string
	}{
		{"defaults", Rotator{}, ""},
		{"short but sound", Rotator{Validity: 25 * time.Second, RenewBefore: 15 * time.Second, Propagation: 2 * time.Second}, ""},
		{"renewal shorter than propagation", Rotator{RenewBefore: 10 * time.Second, Propagation: 30 * time.Second}, "must exceed the CA propagation"},
		{"validity inside the renewal window", Rotator{Validity: 20 * 24 * time.Hour}, "must exceed renew-before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestAwaitKeeperNeverWrites: with the stored certificate inside its
// renewal window (10 days before expiry), AwaitKeeper serves it and writes
// nothing; with no servable certificate it waits for the leader to
// provision one.
func TestAwaitKeeperNeverWrites(t *testing.T) {
	kube := fake.NewClientset()
	hosts := []string{"127.0.0.1"}
	if _, _, err := EnsureCert(t.Context(), kube, "ns", "cert", hosts, time.Now().Add(-DefaultCertValidity+10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before, err := kube.CoreV1().Secrets("ns").Get(t.Context(), "cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := AwaitKeeper(t.Context(), kube, "ns", "cert", hosts, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	after, err := kube.CoreV1().Secrets("ns").Get(t.Context(), "cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion || !bytes.Equal(after.Data[corev1.TLSCertKey], before.Data[corev1.TLSCertKey]) {
		t.Error("a starting replica rewrote the certificate Secret")
	}
	got, _ := k.GetCertificate(nil)
	if want := leaf(before); !got.Leaf.Equal(want) {
		t.Error("the replica does not serve the stored certificate")
	}

	// Nothing servable (another host): it waits, and gives up with ctx.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := AwaitKeeper(ctx, kube, "ns", "cert", []string{"meshroll-webhook.meshroll-system.svc"}, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "failed to wait for a servable certificate") {
		t.Errorf("AwaitKeeper() for a host the certificate does not name = %v, want a wait that ends with ctx", err)
	}
}

// TestCheckRotatesCertificateOutlivingValidity: a certificate issued under a
// longer validity (a year, the default) is rotated, with the usual overlap,
// once the Rotator runs with a shorter one.
func TestCheckRotatesCertificateOutlivingValidity(t *testing.T) {
	pub := &bundles{}
	r := &Rotator{Kube: fake.NewClientset(), Namespace: "ns", Secret: "cert", Hosts: []string{"127.0.0.1"}, Publish: pub.publish}
	if _, err := r.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := secretOf(t, r).Data[corev1.TLSCertKey]
	r.Validity, r.RenewBefore, r.Propagation = time.Hour, 10*time.Minute, time.Millisecond
	s, err := r.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, staged := nextSince(s); !staged {
		t.Fatal("a year-long certificate was not rotated under a one-hour validity")
	}
	time.Sleep(2 * time.Millisecond)
	if s, err = r.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(s.Data[corev1.TLSCertKey], first) || leaf(s).NotAfter.After(time.Now().Add(time.Hour)) {
		t.Errorf("after the rotation the serving certificate expires %s, want within the hour", leaf(s).NotAfter)
	}
	if s, _ = r.Check(t.Context()); func() bool { _, staged := nextSince(s); return staged }() {
		t.Error("a certificate within Validity was rotated again")
	}
}
