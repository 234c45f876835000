package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestInstallControllerDryRun prints the chart's manifest with --set applied
// and touches no cluster (the kubeconfig does not even exist).
func TestInstallControllerDryRun(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"install-controller", "--dry-run", "--kubeconfig", "/nonexistent", "--set", "replicas=3", "-n", "ops"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"kind: ClusterRole", "kind: CustomResourceDefinition", "replicas: 3", "namespace: ops"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if !strings.Contains(errOut.String(), "(dry run) nothing changed") {
		t.Errorf("stderr %q lacks the dry-run notice", errOut.String())
	}
}

// TestInstallControllerBadInput: one clear error each, non-zero exit.
func TestInstallControllerBadInput(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run", "--set", "replicas=two"}, "/replicas"},
		{[]string{"--dry-run", "--set", "nosuchkey=1"}, "nosuchkey"},
		{[]string{"--dry-run", "-f", "/nonexistent/values.yaml"}, "/nonexistent/values.yaml"},
		{[]string{"--kubeconfig", "/nonexistent"}, "/nonexistent"},
	} {
		var out, errOut bytes.Buffer
		code := Main(t.Context(), append([]string{"install-controller"}, tt.args...), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tt.want) || strings.Count(errOut.String(), "error:") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one error naming %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}
