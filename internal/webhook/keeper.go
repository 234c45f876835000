package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Keeper holds the serving certificate a TLS listener hands out, and swaps it
// when the certificate Secret changes: every replica follows the Secret, so a
// rotation by the leader reaches all of them without a restart.
type Keeper struct {
	cur atomic.Pointer[tls.Certificate]
	// certPEM is what cur was loaded from, to skip reloading an unchanged
	// Secret.
	certPEM atomic.Pointer[[]byte]
}

// NewKeeper starts with cert.
func NewKeeper(cert tls.Certificate) *Keeper {
	k := &Keeper{}
	k.cur.Store(&cert)
	return k
}

// GetCertificate is tls.Config.GetCertificate: the current certificate.
func (k *Keeper) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := k.cur.Load()
	if c == nil {
		return nil, errors.New("no serving certificate loaded")
	}
	return c, nil
}

// Load swaps in the Secret's tls.crt/tls.key when they differ from what is
// served; changed is true when it did.
func (k *Keeper) Load(s *corev1.Secret) (changed bool, err error) {
	certPEM, keyPEM := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if old := k.certPEM.Load(); old != nil && bytes.Equal(*old, certPEM) {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("failed to load key pair from secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	k.cur.Store(&pair)
	k.certPEM.Store(&certPEM)
	return true, nil
}

// Follow reloads the certificate from the Secret namespace/name every
// interval until ctx is done. A poll (one GET of one named Secret) rather
// than a watch keeps the RBAC to get on that name. Errors go to onErr and the
// certificate being served stays: a stale but valid certificate is better
// than none.
func (k *Keeper) Follow(ctx context.Context, kube kubernetes.Interface, namespace, name string, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			_, err = k.Load(s)
		}
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(fmt.Errorf("failed to reload certificate from secret %s/%s: %w", namespace, name, err))
		}
	}
}

// AwaitKeeper waits until the Secret namespace/name holds a certificate that
// can be served to hosts now, checking every interval, and returns a Keeper
// serving it. It never writes: the leader's Rotator is the Secret's only
// writer. A replica that issued a certificate itself when the stored one was
// inside its renewal window would replace a certificate whose CA the API
// servers trust with one whose CA nobody published, and every admission
// call reaching a replica that loads it would fail (open) until the next
// rotation.
func AwaitKeeper(ctx context.Context, kube kubernetes.Interface, namespace, name string, hosts []string, interval time.Duration) (*Keeper, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if _, _, err = verifyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[CACertKey], hosts, time.Now()); err == nil {
				k := &Keeper{}
				if _, err := k.Load(s); err != nil {
					return nil, err
				}
				return k, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("failed to wait for a servable certificate in secret %s/%s (last: %v): %w", namespace, name, last, ctx.Err())
		case <-t.C:
		}
	}
}
