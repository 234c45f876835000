package vmagenttest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/meshroll/meshroll/internal/vmagent"
)

// VM is one simulated virtual machine: its own root directory, sidecar port
// and agent configuration (process supervisor, short poll and timeouts).
type VM struct {
	Config     vmagent.Config
	ConfigPath string
	// Addr is the sidecar's host:port (its app route, readiness and version).
	Addr string
}

// NewVM lays out root (config.json, base/) for an agent that downloads from
// mirror. The agent reads the WorkloadEntry only when cfg.APIServer is set by
// the caller (then call WriteConfig again).
func NewVM(root string, mirror *Mirror) (*VM, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := vmagent.Config{
		Root:        root,
		ArtifactURL: mirror.URL() + ArtifactPath,
		PublicKey:   mirror.PublicKeyPEM(),
		Command:     Command,
		Service:     "process",
		Env:         map[string]string{"SIDECAR_ADDR": addr},
		ReadyURL:    "http://" + addr + "/healthz/ready",
		VersionURL:  "http://" + addr + "/server_info",
		Ready:       vmagent.Duration(5 * time.Second),
		Poll:        vmagent.Duration(200 * time.Millisecond),
		Heartbeat:   vmagent.Duration(2 * time.Second),
		Retain:      3,
	}
	vm := &VM{Config: cfg, ConfigPath: filepath.Join(root, "config.json"), Addr: addr}
	base := vmagent.Base{
		ClusterEnv: map[string]string{
			"ISTIO_INBOUND_PORTS": "*", "ISTIO_NAMESPACE": "vms", "ISTIO_SERVICE": "vm.vms",
			"ISTIO_SERVICE_CIDR": "*", "ISTIO_LOCAL_EXCLUDE_PORTS": "22,15090,15021,15020", "SERVICE_ACCOUNT": "vm",
		},
		ProxyConfig: map[string]any{"proxyMetadata": map[string]string{"POD_NAMESPACE": "vms"}},
		IngressIP:   "127.0.0.1",
	}
	if err := WriteBase(filepath.Join(root, "base"), base, []byte("-----BEGIN CERTIFICATE-----\nsandbox\n-----END CERTIFICATE-----\n")); err != nil {
		return nil, err
	}
	return vm, vm.WriteConfig()
}

// WriteConfig writes Config to ConfigPath.
func (vm *VM) WriteConfig() error {
	return writeJSON(vm.ConfigPath, vm.Config)
}

// WriteBase writes base.json and root-cert.pem into dir.
func WriteBase(dir string, base vmagent.Base, rootCert []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, vmagent.RootCertFile), rootCert, 0o644); err != nil {
		return fmt.Errorf("failed to write root cert: %w", err)
	}
	return writeJSON(filepath.Join(dir, vmagent.BaseFile), base)
}

// Override writes the VM's break-glass override file.
func (vm *VM) Override(a vmagent.Assignment) error {
	return writeJSON(filepath.Join(vm.Config.Root, "override.json"), a)
}

func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode %q: %w", p, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", filepath.Dir(p), err)
	}
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("failed to write %q: %w", p, err)
	}
	return os.Rename(p+".tmp", p)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
