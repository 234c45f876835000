package cli

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/controlplane"
)

func runRevision(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRevisionCmd(genericclioptions.NewConfigFlags(true))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestRevisionFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"force needs a reason", []string{"install", "--version", "1.24.2", "--force"}, "--force needs --reason"},
		{"version required", []string{"install"}, "--version is required"},
		{"remove needs a revision", []string{"remove"}, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runRevision(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestInUseSummary(t *testing.T) {
	tests := []struct {
		name string
		refs []controlplane.Referrer
		want string
	}{
		{"free", nil, "-"},
		{"mixed", []controlplane.Referrer{
			{Kind: controlplane.ReferrerPods, Object: "Pod a/x"},
			{Kind: controlplane.ReferrerPods, Object: "Job a/y"},
			{Kind: controlplane.ReferrerNamespace, Object: "Namespace a"},
			{Kind: controlplane.ReferrerTag, Object: "tag default"},
		}, "2 pods, 1 namespace, tag default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inUseSummary(tt.refs); got != tt.want {
				t.Errorf("inUseSummary = %q, want %q", got, tt.want)
			}
		})
	}
}
