package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(1))) }

// run executes meshroll with args and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// unreachable is a kubeconfig for an API server that does not listen.
const unreachable = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: x}
`

func TestBadInput(t *testing.T) {
	good := writeFile(t, "kubeconfig", unreachable)
	tests := []struct {
		name string
		args []string
		want string // substring of the one error line
		code int
	}{
		{"unreachable cluster", []string{"status", "--kubeconfig", good}, "cannot reach the Kubernetes API server at https://127.0.0.1:1", 1},
		{"bad kubeconfig", []string{"status", "--kubeconfig", writeFile(t, "bad", "{not yaml: [")}, "failed to load kubeconfig", 1},
		{"missing kubeconfig", []string{"check", "--kubeconfig", filepath.Join(t.TempDir(), "absent")}, "failed to load kubeconfig", 1},
		{"unknown context", []string{"status", "--kubeconfig", good, "--context", "nope"}, `context "nope" does not exist`, 1},
		{"bad output format", []string{"status", "-o", "xml"}, "unknown output format \"xml\"", 1},
		{"unknown release", []string{"manifest", "render", "--version", "9.9.9"}, "9.9.9", 1},
		{"unknown component", []string{"manifest", "render", "--version", "1.24.2", "--components", "mixer"}, "unknown component \"mixer\"", 1},
		{"bad revision", []string{"manifest", "render", "--version", "1.24.2", "--revision", "Not_Valid"}, "Not_Valid", 1},
		{"malformed values", []string{"manifest", "render", "--version", "1.24.2", "-f", writeFile(t, "v.yaml", "a: [")}, "failed to parse values file", 1},
		{"unknown profile", []string{"manifest", "render", "--version", "1.24.2", "--profile", "nosuch"}, "unknown profile nosuch", 1},
		{"patch matching nothing", []string{"manifest", "render", "--version", "1.24.2", "--patch", writeFile(t, "p.yaml",
			"- target: {kind: Deployment, name: no-such-thing}\n  type: merge\n  patch: {metadata: {labels: {a: b}}}\n")}, "matches no object", 1},
		{"malformed patch file", []string{"manifest", "render", "--version", "1.24.2", "--patch", writeFile(t, "bad.yaml", "- taget: {}\n")}, "bad.yaml", 1},
		{"split without out", []string{"manifest", "render", "--version", "1.24.2", "--split"}, "--out", 1},
		{"plan without target", []string{"plan", "--from", "1.23.2"}, "--to is required", 1},
		{"plan unknown target", []string{"plan", "--from", "1.23.2", "--to", "1.99.0"}, "no safe upgrade path", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 || !strings.HasPrefix(stderr, "error: ") {
				t.Errorf("want one error line, got %d: %q", lines, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestClusterWithoutIstio(t *testing.T) {
	kubeconfig := sandboxtest.Kubeconfig(t)
	for _, cmd := range []string{"status", "check"} {
		_, stderr, code := run(t, cmd, "--kubeconfig", kubeconfig)
		if code != 1 || !strings.Contains(stderr, "no Istio control plane found") {
			t.Errorf("%s on a cluster without Istio: code %d, stderr %q", cmd, code, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "meshroll ") {
		t.Errorf("version: code %d, out %q", code, out)
	}
}
