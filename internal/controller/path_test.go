package controller

import (
	"strings"
	"testing"
)

// TestDefectControllerSkipsVersionPath: a MeshUpgrade applied from Git
// with spec.version several minors ahead was installed and migrated in one
// jump, every proxy across a skew Istio does not support, where `meshroll
// upgrade` plans one hop per canary step. checkPath refuses it, naming the
// hops; one supported hop passes.
func TestDefectControllerSkipsVersionPath(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     []string // substrings of the refusal; none: accepted
	}{
		{"1.23.2", "1.24.2", nil},
		{"1.23.2", "1.25.1", nil}, // two minors: one canary hop
		{"1.24.2", "1.24.3", nil},
		{"1.23.2", "1.29.1", []string{"canary hops", "1.23.2 → 1.25", "MeshUpgrade per hop", "meshroll upgrade --to 1.29.1"}},
		{"1.25.1", "1.23.2", []string{"not a supported upgrade"}},
		{"", "1.24.2", nil}, // unknown source release: other checks decide
	} {
		err := checkPath(c.from, c.to)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s → %s refused: %v", c.from, c.to, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s → %s accepted, want a refusal", c.from, c.to)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s → %s: %v; want it to contain %q", c.from, c.to, err, w)
			}
		}
	}
}
