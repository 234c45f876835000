package fleet

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDefectRerunRefusedAsDifferentSpec: a rerun of the same `fleet
// upgrade` after a kill was refused ("already exists with a different
// spec") because the stored selectors came back from the API server
// without the empty matchLabels map the flags' parser had made.
func TestDefectRerunRefusedAsDifferentSpec(t *testing.T) {
	asked := fixtureSpec()
	sel, err := metav1.ParseToLabelSelector("env in (testing,dev)")
	if err != nil {
		t.Fatal(err)
	}
	asked.Stages[0].Selector = *sel
	stored := *asked.DeepCopy()
	stored.Stages[0].Selector.MatchLabels = nil // what the round trip returns
	stored.Approved = []string{"prod"}          // approved while it ran
	if !SameSpec(stored, asked) {
		t.Fatalf("the rerun's spec is not recognised as the stored one")
	}
	asked.Version = "1.25.0"
	if SameSpec(stored, asked) {
		t.Fatalf("a different version compares equal")
	}
}
