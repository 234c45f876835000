package cli

import (
	"strings"
	"testing"
)

// TestFleetBadInput: every bad flag or fleet file is one error line naming
// the fix, exit 1, before any cluster is contacted.
func TestFleetBadInput(t *testing.T) {
	kc := writeFile(t, "kubeconfig", unreachable)
	file := writeFile(t, "fleet.yaml", "clusters:\n- name: lab-1\n  kubeconfig: "+kc+"\n  labels: {env: lab}\n")
	up := []string{"fleet", "upgrade", "--fleet", file, "--to", "1.24.2"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no version", []string{"fleet", "upgrade", "--stage", "a=env=a"}, "--to is required"},
		{"no stage", up, "no stage: pass --stage NAME=SELECTOR"},
		{"bad stage", append(up, "--stage", "prod"), `invalid --stage "prod": use NAME=SELECTOR`},
		{"approval of no stage", append(up, "--stage", "a=env=lab", "--require-approval", "qa"), `invalid --require-approval "qa": no --stage has that name`},
		{"bad unreachable policy", append(up, "--stage", "a=env=lab", "--unreachable", "maybe"), `invalid --unreachable "maybe"`},
		{"selector matching no cluster", append(up, "--stage", "a=env=prod", "--dry-run"), `stage "a" selector "env=prod" matches no cluster (clusters: lab-1{env=lab})`},
		{"missing fleet file", []string{"fleet", "status", "--fleet", "/nonexistent/fleet.yaml"}, `failed to read fleet file "/nonexistent/fleet.yaml"`},
		{"bad concurrency", []string{"fleet", "status", "--fleet", file, "--concurrency", "0"}, "invalid --concurrency 0"},
		{"bad output", []string{"fleet", "check", "--fleet", file, "-o", "xml"}, `unknown output format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line containing %q", code, errOut, tc.want)
			}
		})
	}
}

// TestFleetStatusUnreachableIsARow: a member that does not answer is a row
// with its error, and the command succeeds.
func TestFleetStatusUnreachableIsARow(t *testing.T) {
	kc := writeFile(t, "kubeconfig", unreachable)
	file := writeFile(t, "fleet.yaml", "clusters:\n- name: lab-1\n  kubeconfig: "+kc+"\n  labels: {env: lab}\n")
	out, errOut, code := run(t, "fleet", "status", "--fleet", file, "--cluster-timeout", "5s")
	if code != 0 || !strings.Contains(out, "lab-1") || !strings.Contains(out, "127.0.0.1:1") || !strings.Contains(out, "1 cluster(s), 1 unreachable") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	_, _, code = run(t, "fleet", "check", "--fleet", file, "--cluster-timeout", "5s")
	if code != 1 {
		t.Errorf("fleet check with an unreachable member: exit %d, want 1", code)
	}
}
