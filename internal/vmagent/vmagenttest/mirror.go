// Package vmagenttest gives meshroll-agent's tests a real stand-in for the
// sidecar artifact: a tiny program built once per test binary, packaged per
// version as tar.gz with sha256 and ed25519 signature files, served over HTTP
// on 127.0.0.1 by a mirror that can inject faults.
package vmagenttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ArtifactPath is the URL path template the mirror serves; use it in the
// agent's artifactURL as Mirror.URL()+ArtifactPath.
const ArtifactPath = "/istio/{{.Version}}/istio-sidecar-{{.OS}}-{{.Arch}}.tar.gz"

// Command is the sidecar's path inside an artifact.
const Command = "bin/istio-sidecar"

// BuildSidecar compiles the stand-in sidecar into dir and returns its path.
func BuildSidecar(dir string) (string, error) {
	return goBuild(dir, "istio-sidecar", "github.com/meshroll/meshroll/internal/vmagent/vmagenttest/sidecar", "-s -w")
}

// BuildAgent compiles meshroll-agent into dir and returns its path.
func BuildAgent(dir string) (string, error) {
	return goBuild(dir, "meshroll-agent", "github.com/meshroll/meshroll/cmd/meshroll-agent", "-s -w -X main.version=test")
}

// goBuild builds a static binary of pkg into dir/name.
func goBuild(dir, name, pkg, ldflags string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build %s: %w: %s", pkg, err, b)
	}
	return out, nil
}

// Package makes a version's artifact: bin/istio-sidecar, VERSION and, for a
// broken release, FAIL.
func Package(binary, version string, broken bool) ([]byte, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("failed to read sidecar binary %q: %w", binary, err)
	}
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	files := []struct {
		name string
		mode int64
		body []byte
	}{{"bin/", 0o755, nil}, {Command, 0o755, bin}, {"VERSION", 0o644, []byte(version + "\n")}}
	if broken {
		files = append(files, struct {
			name string
			mode int64
			body []byte
		}{"FAIL", 0o644, []byte("broken release\n")})
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("failed to package %s: %w", version, err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, fmt.Errorf("failed to package %s: %w", version, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to package %s: %w", version, err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("failed to package %s: %w", version, err)
	}
	return buf.Bytes(), nil
}

// Fault is what the mirror does wrong for one version.
type Fault int

// Faults.
const (
	FaultNone Fault = iota
	// FaultChecksum serves a checksum file for other bytes.
	FaultChecksum
	// FaultSignature signs the checksum file with another key.
	FaultSignature
	// FaultTruncate cuts every artifact response after half of what it announced.
	FaultTruncate
)

// Mirror serves artifacts on 127.0.0.1.
type Mirror struct {
	srv     *http.Server
	ln      net.Listener
	addr    string
	key     ed25519.PrivateKey
	mu      sync.Mutex
	files   map[string][]byte
	faults  map[string]Fault
	rate    int // bytes per second per response, 0 = unlimited
	Ranged  atomic.Int64
	Fetches atomic.Int64
}

// NewMirror starts an empty mirror with a fresh signing key.
func NewMirror() (*Mirror, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate signing key: %w", err)
	}
	m := &Mirror{key: key, files: map[string][]byte{}, faults: map[string]Fault{}}
	return m, m.Start("127.0.0.1:0")
}

// Start (re)starts serving on addr; after Stop, Start(m.Addr()) brings the
// same mirror back.
func (m *Mirror) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	m.ln, m.addr = ln, ln.Addr().String()
	m.srv = &http.Server{Handler: http.HandlerFunc(m.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	return nil
}

// Stop takes the mirror down (artifact server down).
func (m *Mirror) Stop() { _ = m.srv.Close() }

// Addr is host:port; URL the base URL.
func (m *Mirror) Addr() string { return m.addr }

// URL is the mirror's base URL.
func (m *Mirror) URL() string { return "http://" + m.addr }

// PublicKeyPEM is the pinned key for the agent's config.
func (m *Mirror) PublicKeyPEM() string {
	der, _ := x509.MarshalPKIXPublicKey(m.key.Public())
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Add publishes a version's artifact for linux/amd64-style paths of this host.
func (m *Mirror) Add(path string, artifact []byte) {
	sum := sha256.Sum256(artifact)
	sums := []byte(hex.EncodeToString(sum[:]) + "  " + filepath.Base(path) + "\n")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = artifact
	m.files[path+".sha256"] = sums
	m.files[path+".sha256.sig"] = []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(m.key, sums)) + "\n")
}

// SetFault sets the fault for a version's paths (any path containing "/<version>/").
func (m *Mirror) SetFault(version string, f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults[version] = f
}

// SetRate throttles artifact responses to bytes per second (0: unlimited).
func (m *Mirror) SetRate(bps int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rate = bps
}

func (m *Mirror) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	body, ok := m.files[r.URL.Path]
	fault := FaultNone
	for v, f := range m.faults {
		if strings.Contains(r.URL.Path, "/"+v+"/") {
			fault = f
		}
	}
	rate := m.rate
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case fault == FaultChecksum && strings.HasSuffix(r.URL.Path, ".sha256"):
		sum := sha256.Sum256(append([]byte("tampered"), body...))
		body = []byte(hex.EncodeToString(sum[:]) + "  " + strings.TrimSuffix(filepath.Base(r.URL.Path), ".sha256") + "\n")
	case fault == FaultSignature && strings.HasSuffix(r.URL.Path, ".sig"):
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		body = []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(other, []byte("x"))))
	}
	if !strings.HasSuffix(r.URL.Path, ".tar.gz") {
		_, _ = w.Write(body)
		return
	}
	m.Fetches.Add(1)
	if r.Header.Get("Range") != "" {
		m.Ranged.Add(1)
	}
	if fault == FaultTruncate {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body[:len(body)/2])
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}
	http.ServeContent(&throttled{ResponseWriter: w, rate: rate}, r, "", time.Unix(0, 0), bytes.NewReader(body))
}

// throttled slows writes to rate bytes per second.
type throttled struct {
	http.ResponseWriter
	rate int
}

func (t *throttled) Write(p []byte) (int, error) {
	if t.rate <= 0 {
		return t.ResponseWriter.Write(p)
	}
	n := 0
	for len(p) > 0 {
		c := min(len(p), max(t.rate/20, 1))
		k, err := t.ResponseWriter.Write(p[:c])
		n += k
		if err != nil {
			return n, err
		}
		if f, ok := t.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[c:]
		time.Sleep(50 * time.Millisecond)
	}
	return n, nil
}

// PathFor is the mirror path of a version's artifact on this host's OS/arch.
func PathFor(version string) string {
	return "/istio/" + version + "/istio-sidecar-" + runtime.GOOS + "-" + runtime.GOARCH + ".tar.gz"
}

// AddVersion packages binary as version (broken: readiness fails) and publishes it.
func (m *Mirror) AddVersion(binary, version string, broken bool) error {
	art, err := Package(binary, version, broken)
	if err != nil {
		return err
	}
	m.Add(PathFor(version), art)
	return nil
}
