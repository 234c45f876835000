package vmagent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/template"
	"time"
)

// Config is the agent's configuration file (JSON), written by
// `meshroll vm onboard`. Zero durations and sizes take the defaults below.
type Config struct {
	// Root is the agent's directory: versions/, current, journal, downloads.
	Root string `json:"root"`
	// BaseDir holds the onboarding files that do not depend on the revision:
	// root-cert.pem, istio-token and base.json (see Base). "" means Root/base.
	BaseDir string `json:"baseDir,omitempty"`

	// APIServer is the Kubernetes API server URL; "" runs from the override
	// file alone.
	APIServer string `json:"apiServer,omitempty"`
	// CAFile verifies the API server; TokenFile authenticates (re-read on
	// every request so a rotated token is picked up).
	CAFile    string `json:"caFile,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
	// Namespace and Name of the VM's WorkloadEntry.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// APIVersion of WorkloadEntry; "" means networking.istio.io/v1.
	APIVersion string `json:"apiVersion,omitempty"`

	// OverrideFile, when it exists, decides the version instead of the
	// WorkloadEntry (break-glass). "" means Root/override.json.
	OverrideFile string `json:"overrideFile,omitempty"`

	// ArtifactURL is a text/template for the sidecar artifact (.tar.gz) with
	// {{.Version}}, {{.Revision}}, {{.OS}} and {{.Arch}}. The checksum is
	// ArtifactURL+".sha256" and the signature ArtifactURL+".sha256.sig".
	ArtifactURL string `json:"artifactURL"`
	// PublicKey is a PEM ed25519 public key; when set, the checksum file must
	// carry a valid signature by it.
	PublicKey string `json:"publicKey,omitempty"`
	// MaxArtifactBytes caps a download and an unpacked artifact.
	MaxArtifactBytes int64 `json:"maxArtifactBytes,omitempty"`

	// Command is the sidecar's executable, relative to an unpacked artifact,
	// and Args its arguments.
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// Env is added to cluster.env's variables when the process supervisor
	// starts the sidecar.
	Env map[string]string `json:"env,omitempty"`
	// Service is "process" (the agent supervises the sidecar itself, detached,
	// with a pid file) or "systemd" (systemctl restart Unit).
	Service string `json:"service,omitempty"`
	Unit    string `json:"unit,omitempty"`

	// ReadyURL is the sidecar's readiness endpoint (Istio: :15021/healthz/ready);
	// VersionURL, when set, must answer with a body naming the version
	// (Envoy: :15000/server_info).
	ReadyURL   string   `json:"readyURL"`
	VersionURL string   `json:"versionURL,omitempty"`
	Ready      Duration `json:"readyTimeout,omitempty"`

	// Retain is how many versions stay on disk (the current and previous
	// included).
	Retain int `json:"retain,omitempty"`
	// Poll is how often the WorkloadEntry is read; Heartbeat how often the
	// agent reports when nothing changes.
	Poll      Duration `json:"poll,omitempty"`
	Heartbeat Duration `json:"heartbeat,omitempty"`
}

// Defaults.
const (
	DefaultAPIVersion       = "networking.istio.io/v1"
	DefaultMaxArtifactBytes = 512 << 20
	DefaultRetain           = 3
	DefaultPoll             = 10 * time.Second
	DefaultHeartbeat        = 30 * time.Second
	DefaultReady            = 60 * time.Second
)

// Duration is a time.Duration that reads and writes as "10s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("failed to read duration %s: want a string like \"10s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("failed to read duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("failed to read agent config %q: %w", path, err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("failed to parse agent config %q: %w", path, err)
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid agent config %q: %w", path, err)
	}
	return c, nil
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.BaseDir == "" && c.Root != "" {
		c.BaseDir = c.Root + "/base"
	}
	if c.OverrideFile == "" && c.Root != "" {
		c.OverrideFile = c.Root + "/override.json"
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.MaxArtifactBytes == 0 {
		c.MaxArtifactBytes = DefaultMaxArtifactBytes
	}
	if c.Retain == 0 {
		c.Retain = DefaultRetain
	}
	if c.Poll == 0 {
		c.Poll = Duration(DefaultPoll)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = Duration(DefaultHeartbeat)
	}
	if c.Ready == 0 {
		c.Ready = Duration(DefaultReady)
	}
	if c.Service == "" {
		c.Service = "systemd"
	}
	return c
}

// Validate reports every problem of the configuration at once, each naming
// the field and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.Root == "" || !strings.HasPrefix(c.Root, "/") {
		errs = append(errs, fmt.Errorf("root %q must be an absolute directory", c.Root))
	}
	if c.APIServer != "" {
		if u, err := url.Parse(c.APIServer); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("apiServer %q is not a URL like https://10.0.0.1:6443", c.APIServer))
		}
		if c.Namespace == "" || c.Name == "" {
			errs = append(errs, errors.New("namespace and name of the WorkloadEntry are required with apiServer"))
		}
	}
	if _, err := ParseURLTemplate(c.ArtifactURL); err != nil {
		errs = append(errs, err)
	}
	if c.PublicKey != "" {
		if _, err := parsePublicKey(c.PublicKey); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Command == "" || strings.HasPrefix(c.Command, "/") || strings.Contains(c.Command, "..") {
		errs = append(errs, fmt.Errorf("command %q must be a path inside the artifact, like bin/istio-sidecar", c.Command))
	}
	switch c.Service {
	case "process":
	case "systemd":
		if c.Unit == "" {
			errs = append(errs, errors.New("unit is required with service systemd (e.g. istio.service)"))
		}
	default:
		errs = append(errs, fmt.Errorf("service %q is not one of process, systemd", c.Service))
	}
	if u, err := url.Parse(c.ReadyURL); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("readyURL %q is not a URL like http://127.0.0.1:15021/healthz/ready", c.ReadyURL))
	}
	if c.Retain < 2 {
		errs = append(errs, fmt.Errorf("retain %d must be at least 2 (the running and the previous version)", c.Retain))
	}
	if c.MaxArtifactBytes < 0 {
		errs = append(errs, fmt.Errorf("maxArtifactBytes %d must be positive", c.MaxArtifactBytes))
	}
	return errors.Join(errs...)
}

// URLVars are the fields an artifact URL template can use.
type URLVars struct {
	Version, Revision, OS, Arch string
}

// ParseURLTemplate parses and trial-renders an artifact URL template, so a
// template that names an unknown field or renders no http(s) URL is refused
// when the agent starts, not when the first upgrade arrives.
func ParseURLTemplate(s string) (*template.Template, error) {
	if s == "" {
		return nil, errors.New("artifactURL is required (e.g. https://mirror/istio/{{.Version}}/istio-sidecar-{{.Arch}}.tar.gz)")
	}
	t, err := template.New("artifactURL").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("artifactURL %q is not a valid template: %w", s, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, URLVars{Version: "1.0.0", Revision: "1-0-0", OS: "linux", Arch: "amd64"}); err != nil {
		return nil, fmt.Errorf("artifactURL %q uses a field that does not exist (use .Version, .Revision, .OS, .Arch): %w", s, err)
	}
	u, err := url.Parse(b.String())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("artifactURL %q does not render an http(s) URL (got %q)", s, b.String())
	}
	if !strings.Contains(s, "{{") || !strings.Contains(s, ".Version") {
		return nil, fmt.Errorf("artifactURL %q must contain {{.Version}}, or every version would download the same file", s)
	}
	return t, nil
}
