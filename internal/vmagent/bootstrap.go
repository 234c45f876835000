package vmagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Base is what onboarding knows about the VM that does not depend on the
// revision (BaseDir/base.json). Together with the revision it gives the files
// `istioctl x workload entry configure --revision <rev>` writes: cluster.env,
// mesh.yaml, root-cert.pem, istio-token and hosts.
type Base struct {
	// IstioNamespace is the control plane's namespace ("" means istio-system).
	IstioNamespace string `json:"istioNamespace,omitempty"`
	// ClusterEnv is cluster.env without CA_ADDR (which names the revision's
	// istiod): the proxyMetadata and the WorkloadGroup's attributes.
	ClusterEnv map[string]string `json:"clusterEnv"`
	// ProxyConfig is mesh.yaml's defaultConfig without discoveryAddress.
	ProxyConfig map[string]any `json:"proxyConfig"`
	// IngressIP, when set, is where the VM reaches istiod (hosts file).
	IngressIP string `json:"ingressIP,omitempty"`
}

// Base file names in BaseDir.
const (
	BaseFile       = "base.json"
	RootCertFile   = "root-cert.pem"
	IstioTokenFile = "istio-token"
)

// LoadBase reads BaseDir/base.json.
func LoadBase(dir string) (Base, error) {
	p := filepath.Join(dir, BaseFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return Base{}, fmt.Errorf("failed to read onboarding file %q (run meshroll vm onboard): %w", p, err)
	}
	var base Base
	if err := json.Unmarshal(b, &base); err != nil {
		return Base{}, fmt.Errorf("failed to parse onboarding file %q: %w", p, err)
	}
	return base, nil
}

// IstiodHost is the revision's istiod Service host, as istioctl names it.
func IstiodHost(ns, revision string) string {
	if revision == "" || revision == "default" {
		return "istiod." + ns + ".svc"
	}
	return "istiod-" + revision + "." + ns + ".svc"
}

// Render returns the bootstrap files for a revision, reading root-cert.pem
// and istio-token from dir.
func (b Base) Render(dir string, revision string) (map[string][]byte, error) {
	ns := b.IstioNamespace
	if ns == "" {
		ns = "istio-system"
	}
	addr := IstiodHost(ns, revision) + ":15012"
	env := map[string]string{}
	for k, v := range b.ClusterEnv {
		env[k] = v
	}
	env["CA_ADDR"] = addr
	pc := map[string]any{}
	for k, v := range b.ProxyConfig {
		pc[k] = v
	}
	pc["discoveryAddress"] = addr
	// JSON is YAML: pilot-agent reads mesh.yaml with a YAML parser.
	mesh, err := json.MarshalIndent(map[string]any{"defaultConfig": pc}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to render mesh.yaml: %w", err)
	}
	files := map[string][]byte{
		"cluster.env": []byte(EnvFile(env)),
		"mesh.yaml":   append(mesh, '\n'),
		"hosts":       nil,
	}
	if b.IngressIP != "" {
		files["hosts"] = []byte(b.IngressIP + " " + IstiodHost(ns, revision) + "\n")
	}
	for _, name := range []string{RootCertFile, IstioTokenFile} {
		c, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // a sandbox VM without mesh identity
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read onboarding file %q: %w", filepath.Join(dir, name), err)
		}
		files[name] = c
	}
	return files, nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// EnvFile writes KEY=value lines sorted by key, values shell-quoted the way
// istioctl does, so systemd's EnvironmentFile and sh both read them.
func EnvFile(env map[string]string) string {
	lines := make([]string, 0, len(env))
	for k, v := range env {
		q := v
		if !shellSafe.MatchString(v) {
			q = "'" + strings.ReplaceAll(v, "'", `'"'"'`) + "'"
		}
		lines = append(lines, k+"="+q)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// ParseEnvFile reads what EnvFile writes.
func ParseEnvFile(s string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'"'"'`, "'")
		}
		env[k] = v
	}
	return env
}
