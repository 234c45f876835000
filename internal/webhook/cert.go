package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Certificate lifetimes. The CA's key is never stored: it signs the serving
// certificate once and is dropped, so a leaked Secret cannot mint certificates
// for other names. Renewal therefore replaces the CA too, and the caller must
// Register again with the new caBundle (it does so on every start anyway).
const (
	// DefaultCertValidity is each issued certificate's (and its CA's)
	// lifetime unless a Rotator sets Validity.
	DefaultCertValidity = 365 * 24 * time.Hour
	// DefaultRenewBefore is how long a stored certificate must still be
	// valid to be reused: a month leaves room for a process started now to
	// run long before its certificate expires.
	DefaultRenewBefore = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore so API servers with a slightly slow clock
	// accept a certificate issued a moment ago.
	clockSkew = time.Hour
	// ensureAttempts bounds create/update races between starters.
	ensureAttempts = 5
)

// CACertKey is the Secret data key holding the CA bundle, next to the
// kubernetes.io/tls keys tls.crt and tls.key.
const CACertKey = "ca.crt"

// EnsureCert returns the webhook's serving certificate and the CA bundle (PEM)
// to register it with, kept in the Secret namespace/secretName so that every
// replica and every restart serves the same certificate.
//
// A stored certificate is reused when it chains to the stored CA, names every
// host (DNS names, or IP addresses such as 127.0.0.1) and is valid for more
// than 30 days after now. Otherwise a new CA and certificate are issued and
// written. Writes never clobber a concurrent starter: the Secret is created,
// and when it already exists it is read again and, if that copy is still
// unusable, updated with the resourceVersion just read. On a conflict the loop
// reads again, so racing starters converge on whichever certificate was
// written first and all of them return that one.
func EnsureCert(ctx context.Context, kube kubernetes.Interface, namespace, secretName string, hosts []string, now time.Time) (tls.Certificate, []byte, error) {
	return ensureCert(ctx, kube, namespace, secretName, hosts, now, DefaultCertValidity, DefaultRenewBefore)
}

// ensureCert is EnsureCert issuing certificates valid for validity and
// reusing a stored one valid for longer than reuseFor (the Rotator's
// settings).
func ensureCert(ctx context.Context, kube kubernetes.Interface, namespace, secretName string, hosts []string, now time.Time, validity, reuseFor time.Duration) (tls.Certificate, []byte, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, nil, fmt.Errorf("failed to ensure certificate %s/%s: no hosts", namespace, secretName)
	}
	secrets := kube.CoreV1().Secrets(namespace)
	for range ensureAttempts {
		existing, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			existing = nil
		case err != nil:
			return tls.Certificate{}, nil, fmt.Errorf("failed to get secret %s/%s: %w", namespace, secretName, err)
		default:
			if pair, caPEM, err := checkCert(existing, hosts, now, now.Add(reuseFor)); err == nil {
				return pair, caPEM, nil
			}
		}

		certPEM, keyPEM, caPEM, err := issueCertFor(hosts, now, validity)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		s := certSecret(namespace, secretName, certPEM, keyPEM, caPEM)
		if existing == nil {
			_, err = secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
		} else {
			s.ResourceVersion = existing.ResourceVersion
			s.Labels = mergeLabels(existing.Labels, s.Labels)
			s.Annotations = existing.Annotations
			_, err = secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager})
		}
		switch {
		case err == nil:
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return tls.Certificate{}, nil, fmt.Errorf("failed to load issued certificate %s/%s: %w", namespace, secretName, err)
			}
			return pair, caPEM, nil
		case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
			continue // somebody else wrote it first: read theirs
		default:
			return tls.Certificate{}, nil, fmt.Errorf("failed to write secret %s/%s: %w", namespace, secretName, err)
		}
	}
	return tls.Certificate{}, nil, fmt.Errorf("failed to ensure certificate %s/%s: still contended after %d attempts", namespace, secretName, ensureAttempts)
}

// certSecret is the Secret holding a serving certificate and its CA.
func certSecret(namespace, name string, certPEM, keyPEM, caPEM []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": FieldManager, "app.kubernetes.io/component": "revision-assignment-webhook"},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, CACertKey: caPEM},
	}
}

// mergeLabels keeps labels others put on the Secret and sets ours.
func mergeLabels(have, ours map[string]string) map[string]string {
	out := make(map[string]string, len(have)+len(ours))
	maps.Copy(out, have)
	maps.Copy(out, ours)
	return out
}

// checkCert returns the Secret's key pair and CA when the certificate is
// valid from now until at least until, chains to the CA bundle and names
// every host. Verifying at until checks the CA and leaf lifetimes together.
func checkCert(s *corev1.Secret, hosts []string, now, until time.Time) (tls.Certificate, []byte, error) {
	caPEM := s.Data[CACertKey]
	pair, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to load key pair: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, errors.New("failed to load CA bundle: no certificate")
	}
	leaf := pair.Leaf
	if now.Before(leaf.NotBefore) {
		return tls.Certificate{}, nil, fmt.Errorf("failed to verify certificate: not valid before %s", leaf.NotBefore)
	}
	opts := x509.VerifyOptions{Roots: pool, CurrentTime: until, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to verify certificate: %w", err)
	}
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("failed to verify certificate for %q: %w", h, err)
		}
	}
	return pair, caPEM, nil
}

// issueCert makes a fresh CA and a serving certificate for hosts signed by it,
// both ECDSA P-256 and valid for a year, and returns the PEM encodings.
func issueCert(hosts []string, now time.Time) (certPEM, keyPEM, caPEM []byte, err error) {
	return issueCertFor(hosts, now, DefaultCertValidity)
}

// issueCertFor is issueCert with a chosen validity (the Rotator's).
func issueCertFor(hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM, caPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to generate CA key: %w", err)
	}
	caTmpl, err := certTemplate(now, validity)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl.Subject = pkix.Name{CommonName: "meshroll-revision-assignment-ca"}
	caTmpl.IsCA = true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to parse CA certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to generate serving key: %w", err)
	}
	tmpl, err := certTemplate(now, validity)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl.Subject = pkix.Name{CommonName: hosts[0]}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to create serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to encode serving key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		nil
}

// certTemplate is what the CA and serving certificate share.
func certTemplate(now time.Time, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("failed to generate certificate serial: %w", err)
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		BasicConstraintsValid: true,
	}, nil
}
