package sandbox

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serviceCIDR is the apiserver's Service range; its first address is the `kubernetes` Service, so
// it is in the serving certificate. A /16 leaves room for thousands of test Services.
const (
	serviceCIDR     = "10.96.0.0/16"
	kubernetesSvcIP = "10.96.0.1"
)

// certValidity is long because a sandbox's PKI is reused across restarts for as long as its
// directory lives.
const certValidity = 10 * 365 * 24 * time.Hour

// PKI file names inside the sandbox's pki directory.
const (
	fileCACert     = "ca.crt"
	fileCAKey      = "ca.key"
	fileServerCert = "apiserver.crt"
	fileServerKey  = "apiserver.key"
	fileAdminCert  = "admin.crt"
	fileAdminKey   = "admin.key"
	fileSAKey      = "sa.key"
	fileSAPub      = "sa.pub"
)

// pkiFiles holds every PEM file a sandbox needs, keyed by file name.
type pkiFiles map[string][]byte

// serverSANs are the names the apiserver is reached by: loopback for clients on this machine, and
// the in-cluster names for anything that resolves the `kubernetes` Service.
func serverSANs() ([]string, []net.IP) {
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP(kubernetesSvcIP)}
	return dns, ips
}

// newPKI generates a CA, an apiserver serving certificate, an admin client certificate in
// system:masters and an RSA service-account key pair, all valid from an hour before now.
func newPKI(now time.Time) (pkiFiles, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate key %q: %w", "ca", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "meshroll-sandbox-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := signCert(now, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("failed to parse certificate %q: %w", "ca", err)
	}
	files := pkiFiles{fileCACert: pemCert(caDER)}
	if files[fileCAKey], err = pemKey(caKey); err != nil {
		return nil, err
	}

	dns, ips := serverSANs()
	leaves := []struct {
		certFile, keyFile string
		tmpl              *x509.Certificate
	}{
		{fileServerCert, fileServerKey, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			DNSNames:    dns,
			IPAddresses: ips,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{fileAdminCert, fileAdminKey, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "meshroll-sandbox-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, l := range leaves {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("failed to generate key %q: %w", l.keyFile, err)
		}
		l.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := signCert(now, l.tmpl, caCert, key.Public(), caKey)
		if err != nil {
			return nil, err
		}
		files[l.certFile] = pemCert(der)
		if files[l.keyFile], err = pemKey(key); err != nil {
			return nil, err
		}
	}

	// Service-account tokens are signed with RSA: every consumer of projected tokens accepts it.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("failed to generate key %q: %w", "service-account", err)
	}
	if files[fileSAKey], err = pemKey(saKey); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal public key %q: %w", "service-account", err)
	}
	files[fileSAPub] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	return files, nil
}

// signCert fills the serial number and validity window and signs tmpl with the parent's key.
func signCert(now time.Time, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("failed to generate serial for %q: %w", tmpl.Subject.CommonName, err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(certValidity)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("failed to sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// pemCert encodes a DER certificate.
func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// pemKey encodes a private key as PKCS#8, which every Kubernetes component reads.
func pemKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal private key %q: %w", fmt.Sprintf("%T", key), err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// pkiNames lists every PKI file name.
func pkiNames() []string {
	return []string{fileCACert, fileCAKey, fileServerCert, fileServerKey, fileAdminCert, fileAdminKey, fileSAKey, fileSAPub}
}

// loadPKI reads the PKI written by an earlier Up.
func loadPKI(dir string) (pkiFiles, error) {
	files := pkiFiles{}
	for _, name := range pkiNames() {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("failed to read pki file %q: %w", name, err)
		}
		files[name] = b
	}
	return files, nil
}

// ensurePKI loads the PKI from dir, generating and writing a new one when any file is missing
// (a partial PKI is never trusted: its parts may not match).
func ensurePKI(dir string, now time.Time) (pkiFiles, error) {
	if files, err := loadPKI(dir); err == nil {
		return files, nil
	}
	files, err := newPKI(now)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create pki directory %q: %w", dir, err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, fmt.Errorf("failed to write pki file %q: %w", name, err)
		}
	}
	return files, nil
}
