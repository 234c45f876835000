package cli

import (
	"strings"
	"testing"
)

// TestAppRolloutBadInput: every bad flag is one error line naming the fix,
// exit 1, before any cluster is contacted (the kubeconfig points nowhere).
func TestAppRolloutBadInput(t *testing.T) {
	kc := writeFile(t, "kubeconfig", unreachable)
	base := []string{"app", "rollout", "echo-v1", "--kubeconfig", kc, "--service", "echo", "--version", "v2"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no service", []string{"app", "rollout", "echo-v1", "--version", "v2"}, `"service" not set`},
		{"no version", []string{"app", "rollout", "echo-v1", "--service", "echo"}, `"version" not set`},
		{"steps not numbers", append(base, "--steps", "10,half,100"), `invalid --steps "10,half,100": "half" is not a whole percentage`},
		{"steps going back", append(base, "--steps", "50,10,100"), "weights must grow"},
		{"steps not ending at 100", append(base, "--steps", "10,50"), "the last weight must be 100"},
		{"unknown gate", append(base, "--gate", "nope"), `invalid --gate "nope"`},
		{"no sync wait and no step wait", append(base, "--no-sync-wait"), "invalid --no-sync-wait without --step-wait"},
		{"sync timeout not positive", append(base, "--sync-timeout", "0s"), "invalid --sync-timeout 0s"},
		{"unreachable cluster", base, "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line containing %q", code, errOut, tc.want)
			}
		})
	}
}
