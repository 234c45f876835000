package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Keys of a rotation in progress, in the certificate Secret: the next
// certificate waits there until the API servers trust its CA.
const (
	nextCertKey = "next.crt"
	nextKeyKey  = "next.key"
	// AnnotationNextSince is when the next certificate's CA was published.
	AnnotationNextSince = "meshroll.io/next-published-at"
)

// Rotator renews the webhook's certificate before it expires without a
// failed admission. A rotation has two phases, recorded in the Secret so a
// leader that dies between them is finished by the next one:
//
//  1. issue a new CA and certificate, keep the certificate aside (next.crt),
//     and publish a CA bundle holding both the serving CA and the new one;
//  2. once the bundle has had Propagation to reach every API server, make
//     the new certificate the serving one (tls.crt); replicas pick it up
//     through Keeper.Follow, and until they do, their old certificate still
//     verifies against the bundle.
//
// The old CA stays in the bundle until the next rotation, so the bundle never
// holds more than two CAs.
type Rotator struct {
	Kube      kubernetes.Interface
	Namespace string
	Secret    string
	// Hosts the certificate names (DNS names or IPs).
	Hosts []string
	// Publish makes the API servers trust caBundle, e.g. Register with it.
	Publish func(ctx context.Context, caBundle []byte) error
	// Propagation is how long a published bundle needs to reach every API
	// server (default 30 s: they follow webhook configurations through an
	// informer, usually within a second).
	Propagation time.Duration
	// RenewBefore renews a certificate this long before it expires (default 30 days).
	RenewBefore time.Duration
	// Validity of new certificates (default a year).
	Validity time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// DefaultPropagation is how long a new CA is published before the
// certificate it signs is served, unless a Rotator sets Propagation.
const DefaultPropagation = 30 * time.Second

func (r *Rotator) propagation() time.Duration {
	if r.Propagation > 0 {
		return r.Propagation
	}
	return DefaultPropagation
}

func (r *Rotator) renewBefore() time.Duration {
	if r.RenewBefore > 0 {
		return r.RenewBefore
	}
	return DefaultRenewBefore
}

func (r *Rotator) validity() time.Duration {
	if r.Validity > 0 {
		return r.Validity
	}
	return DefaultCertValidity
}

// Validate refuses settings under which a rotation cannot finish in time:
// a staged certificate must be promoted (Propagation) before the serving
// one expires (RenewBefore), and a new certificate must outlive its own
// renewal window, or every Check would start another rotation.
func (r *Rotator) Validate() error {
	p, rb, v := r.propagation(), r.renewBefore(), r.validity()
	if rb <= p {
		return fmt.Errorf("invalid webhook certificate renewal: renew-before %s must exceed the CA propagation time %s, or the certificate expires before its successor is served", rb, p)
	}
	if v <= rb+p {
		return fmt.Errorf("invalid webhook certificate validity %s: it must exceed renew-before %s plus the CA propagation time %s, or every check starts a new rotation", v, rb, p)
	}
	return nil
}

// Check does whatever the Secret's state calls for, once: provisions a
// missing or unusable certificate, starts a rotation of one that expires
// within RenewBefore (or later than Validity from now), or finishes a
// rotation whose bundle has propagated. It
// never waits, so the controller calls it on a timer. It returns the Secret
// as it left it.
func (r *Rotator) Check(ctx context.Context) (*corev1.Secret, error) {
	now := r.now()
	s, err := r.Kube.CoreV1().Secrets(r.Namespace).Get(ctx, r.Secret, metav1.GetOptions{})
	if err != nil || !servable(s, r.Hosts, now) {
		// Nothing served yet or nothing usable: no admission can depend on
		// it, so there is nothing to overlap with.
		if _, caPEM, err := ensureCert(ctx, r.Kube, r.Namespace, r.Secret, r.Hosts, now, r.validity(), r.renewBefore()); err != nil {
			return nil, err
		} else if err := r.Publish(ctx, caPEM); err != nil {
			return nil, err
		}
		return r.Kube.CoreV1().Secrets(r.Namespace).Get(ctx, r.Secret, metav1.GetOptions{})
	}
	if since, ok := nextSince(s); ok {
		if now.Sub(since) < r.propagation() {
			return s, nil
		}
		return r.promote(ctx, s)
	}
	// A certificate outliving Validity was issued under a longer setting:
	// rotating it makes a shortened validity take effect now, not in a year.
	if left := leaf(s).NotAfter.Sub(now); left > r.renewBefore() && left <= r.validity() {
		return s, nil
	}
	return r.stage(ctx, s, now)
}

// Rotate rotates now, whatever the certificate's age, and returns once the
// new certificate is the serving one: phase 1, a wait of Propagation, phase 2.
func (r *Rotator) Rotate(ctx context.Context) error {
	s, err := r.Check(ctx)
	if err != nil {
		return err
	}
	if _, ok := nextSince(s); !ok {
		if s, err = r.stage(ctx, s, r.now()); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("failed to rotate certificate %s/%s: %w", r.Namespace, r.Secret, ctx.Err())
	case <-time.After(r.propagation()):
	}
	_, err = r.promote(ctx, s)
	return err
}

// Run calls Check every interval until ctx is done, reporting errors to
// onErr; a failed check is retried at the next tick.
func (r *Rotator) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Check(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stage is phase 1: the next certificate goes aside and the bundle of the
// serving CA plus the new CA is published.
func (r *Rotator) stage(ctx context.Context, s *corev1.Secret, now time.Time) (*corev1.Secret, error) {
	certPEM, keyPEM, newCA, err := issueCertFor(r.Hosts, now, r.validity())
	if err != nil {
		return nil, err
	}
	bundle := append(append([]byte{}, newCA...), issuerOf(s)...)
	s = s.DeepCopy()
	s.Data[nextCertKey], s.Data[nextKeyKey], s.Data[CACertKey] = certPEM, keyPEM, bundle
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[AnnotationNextSince] = now.UTC().Format(time.RFC3339Nano)
	// Publish before recording: a bundle published but not recorded is
	// harmless (the next Check stages again), a recorded but unpublished one
	// would be promoted into failed admissions.
	if err := r.Publish(ctx, bundle); err != nil {
		return nil, err
	}
	out, err := r.Kube.CoreV1().Secrets(r.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("failed to update secret %s/%s: %w", r.Namespace, r.Secret, err)
	}
	return out, nil
}

// promote is phase 2: the next certificate becomes the serving one. The
// bundle is published again first, in case the leader that staged it died
// before its own publish reached the configuration.
func (r *Rotator) promote(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error) {
	if err := r.Publish(ctx, s.Data[CACertKey]); err != nil {
		return nil, err
	}
	s = s.DeepCopy()
	s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = s.Data[nextCertKey], s.Data[nextKeyKey]
	delete(s.Data, nextCertKey)
	delete(s.Data, nextKeyKey)
	delete(s.Annotations, AnnotationNextSince)
	out, err := r.Kube.CoreV1().Secrets(r.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("failed to update secret %s/%s: %w", r.Namespace, r.Secret, err)
	}
	return out, nil
}

// servable reports whether the Secret's serving certificate (and a staged
// next one, if any) chain to its bundle, name the hosts and are valid now.
func servable(s *corev1.Secret, hosts []string, now time.Time) bool {
	if _, _, err := verifyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[CACertKey], hosts, now); err != nil {
		return false
	}
	if _, ok := nextSince(s); ok {
		if _, _, err := verifyPair(s.Data[nextCertKey], s.Data[nextKeyKey], s.Data[CACertKey], hosts, now); err != nil {
			return false
		}
	}
	return true
}

// verifyPair loads a key pair and verifies it against caPEM for hosts at now.
func verifyPair(certPEM, keyPEM, caPEM []byte, hosts []string, now time.Time) (tls.Certificate, []byte, error) {
	s := &corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, CACertKey: caPEM}}
	return checkCert(s, hosts, now, now)
}

// nextSince returns when a staged rotation's bundle was published.
func nextSince(s *corev1.Secret) (time.Time, bool) {
	v, ok := s.Annotations[AnnotationNextSince]
	if !ok || len(s.Data[nextCertKey]) == 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// leaf is the serving certificate (servable has checked it parses).
func leaf(s *corev1.Secret) *x509.Certificate {
	pair, _ := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	return pair.Leaf
}

// issuerOf returns the PEM of the bundle's CA that signed the serving
// certificate: the one CA a rotation must keep.
func issuerOf(s *corev1.Secret) []byte {
	l := leaf(s)
	rest := s.Data[CACertKey]
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil
		}
		ca, err := x509.ParseCertificate(b.Bytes)
		if err == nil && l.CheckSignatureFrom(ca) == nil {
			return pem.EncodeToMemory(b)
		}
	}
}
