package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// runTag runs `meshroll tag ...` on a root of its own, so the command is
// tested whether or not root.go registers it yet.
func runTag(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	kube := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{Use: "meshroll", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(&out)
	root.SetErr(&errOut)
	kube.AddFlags(root.PersistentFlags())
	root.AddCommand(newTagCmd(kube))
	root.SetArgs(append([]string{"tag"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestTagBadInput(t *testing.T) {
	unreachableCfg := writeFile(t, "kubeconfig", unreachable)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"invalid tag", []string{"set", "Prod_Canary", "--revision", "1-24-2", "--kubeconfig", unreachableCfg}, `invalid tag name "Prod_Canary"`},
		{"missing revision", []string{"set", "prod-canary"}, `required flag(s) "revision" not set`},
		{"two tags", []string{"set", "a", "b", "--revision", "1-24-2"}, "accepts 1 arg(s)"},
		{"invalid tag to remove", []string{"remove", "a.b", "--kubeconfig", unreachableCfg}, `invalid tag name "a.b"`},
		{"bad output", []string{"list", "-o", "xml"}, `unknown output format "xml"`},
		{"unreachable cluster", []string{"list", "--kubeconfig", unreachableCfg}, "cannot reach the Kubernetes API server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runTag(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestTagWithoutIstio runs against the package's sandbox, which has no
// Istio: every tag command fails with one clear error and changes nothing.
func TestTagWithoutIstio(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the sandbox (run without -short)")
	}
	kc := sandboxtest.Kubeconfig(t)
	for _, args := range [][]string{
		{"set", "prod-canary", "--revision", "1-24-2"},
		{"remove", "prod-canary"},
		{"list"},
	} {
		_, err := runTag(t, append(args, "--kubeconfig", kc)...)
		if err == nil || !strings.Contains(err.Error(), "no Istio control plane found") {
			t.Errorf("tag %v: err = %v, want no Istio control plane found", args, err)
		}
	}
}
