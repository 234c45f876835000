package injector

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside Options.CertDir. The CA is kept across restarts so that
// webhooks already rewritten with its caBundle keep working.
const (
	caCertFile    = "ca.crt"
	caKeyFile     = "ca.key"
	servingCert   = "tls.crt"
	servingKey    = "tls.key"
	caValidity    = 10 * 365 * 24 * time.Hour
	certValidity  = 365 * 24 * time.Hour
	renewalMargin = 24 * time.Hour
)

// loopbackIP is the only address the serving certificate is for: the sandbox
// API server reaches the injector on loopback.
func loopbackIP() net.IP { return net.IPv4(127, 0, 0, 1) }

// keyPair is a parsed certificate with its key and PEM encodings.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// loadOrCreateCerts returns the serving certificate and the CA bundle (PEM)
// for dir, reusing what an earlier run left there when it is still valid for
// now and issuing anew what is missing or expiring.
func loadOrCreateCerts(dir string, now time.Time) (tls.Certificate, []byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to create cert dir %q: %w", dir, err)
	}
	ca, err := loadKeyPair(dir, caCertFile, caKeyFile)
	if err != nil || !ca.cert.IsCA || now.Add(renewalMargin).After(ca.cert.NotAfter) {
		if ca, err = issue(nil, now); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := saveKeyPair(dir, caCertFile, caKeyFile, ca); err != nil {
			return tls.Certificate{}, nil, err
		}
	}
	srv, err := loadKeyPair(dir, servingCert, servingKey)
	if err != nil || !servingValid(srv, ca, now) {
		if srv, err = issue(&ca, now); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := saveKeyPair(dir, servingCert, servingKey, srv); err != nil {
			return tls.Certificate{}, nil, err
		}
	}
	pair, err := tls.X509KeyPair(srv.certPEM, srv.keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to load serving key pair %q: %w", dir, err)
	}
	return pair, ca.certPEM, nil
}

// servingValid tells whether srv was signed by ca, names 127.0.0.1 and is
// valid for a while longer.
func servingValid(srv, ca keyPair, now time.Time) bool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	_, err := srv.cert.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now.Add(renewalMargin),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err == nil && srv.cert.VerifyHostname(loopbackIP().String()) == nil
}

// issue makes a self-signed CA when parent is nil, otherwise a serving
// certificate for 127.0.0.1 and localhost signed by parent.
func issue(parent *keyPair, now time.Time) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to generate key %q: %w", "ecdsa-p256", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to generate serial %q: %w", "certificate", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-time.Hour),
		BasicConstraintsValid: true,
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent == nil {
		tmpl.Subject = pkix.Name{CommonName: "meshroll-sandbox-injector-ca"}
		tmpl.NotAfter = now.Add(caValidity)
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.Subject = pkix.Name{CommonName: "meshroll-sandbox-injector"}
		tmpl.NotAfter = now.Add(certValidity)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{loopbackIP()}
		tmpl.DNSNames = []string{"localhost"}
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to parse certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to encode key %q: %w", tmpl.Subject.CommonName, err)
	}
	return keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func loadKeyPair(dir, certFile, keyFile string) (keyPair, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to read certificate %q: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to read key %q: %w", keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return keyPair{}, fmt.Errorf("failed to load key pair %q: %w", certFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || pair.Leaf == nil {
		return keyPair{}, fmt.Errorf("failed to load key pair %q: %w", certFile, errors.ErrUnsupported)
	}
	return keyPair{cert: pair.Leaf, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

func saveKeyPair(dir, certFile, keyFile string, kp keyPair) error {
	if err := writeFileAtomic(filepath.Join(dir, keyFile), kp.keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, certFile), kp.certPEM, 0o644)
}

// writeFileAtomic never leaves a half-written file for the next run to trip on.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("failed to create file %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write file %q: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to chmod file %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to close file %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to rename file %q: %w", path, err)
	}
	return nil
}
