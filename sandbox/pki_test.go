package sandbox

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"
)

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewPKI(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	files, err := newPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, files[fileCACert])
	if !ca.IsCA {
		t.Error("CA certificate is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	tests := []struct {
		name      string
		cert, key string
		usage     x509.ExtKeyUsage
		dnsName   string
		org       string
	}{
		{name: "serving by IP", cert: fileServerCert, key: fileServerKey, usage: x509.ExtKeyUsageServerAuth, dnsName: "127.0.0.1"},
		{name: "serving by localhost", cert: fileServerCert, key: fileServerKey, usage: x509.ExtKeyUsageServerAuth, dnsName: "localhost"},
		{name: "serving in cluster", cert: fileServerCert, key: fileServerKey, usage: x509.ExtKeyUsageServerAuth, dnsName: "kubernetes.default.svc"},
		{name: "serving by service IP", cert: fileServerCert, key: fileServerKey, usage: x509.ExtKeyUsageServerAuth, dnsName: kubernetesSvcIP},
		{name: "admin client", cert: fileAdminCert, key: fileAdminKey, usage: x509.ExtKeyUsageClientAuth, org: "system:masters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseCert(t, files[tt.cert])
			if _, err := c.Verify(x509.VerifyOptions{
				Roots: roots, DNSName: tt.dnsName, KeyUsages: []x509.ExtKeyUsage{tt.usage}, CurrentTime: now,
			}); err != nil {
				t.Errorf("verify: %v", err)
			}
			if tt.org != "" && !slices.Contains(c.Subject.Organization, tt.org) {
				t.Errorf("organization = %v, want %q", c.Subject.Organization, tt.org)
			}
			if _, err := tls.X509KeyPair(files[tt.cert], files[tt.key]); err != nil {
				t.Errorf("key pair: %v", err)
			}
			if !c.NotBefore.Before(now) || !c.NotAfter.After(now.Add(365*24*time.Hour)) {
				t.Errorf("validity %s..%s does not cover a year from now", c.NotBefore, c.NotAfter)
			}
		})
	}

	t.Run("service-account key pair", func(t *testing.T) {
		kb, _ := pem.Decode(files[fileSAKey])
		key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			t.Fatalf("service-account key is %T, want RSA", key)
		}
		pb, _ := pem.Decode(files[fileSAPub])
		pub, err := x509.ParsePKIXPublicKey(pb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !rsaKey.PublicKey.Equal(pub) {
			t.Error("public key does not match private key")
		}
	})
}

func TestEnsurePKIReusesFiles(t *testing.T) {
	dir := t.TempDir()
	first, err := ensurePKI(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	second, err := ensurePKI(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range pkiNames() {
		if string(first[name]) != string(second[name]) {
			t.Errorf("%s was regenerated", name)
		}
	}
}
