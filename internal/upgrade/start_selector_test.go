package upgrade

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// TestDefectNamespaceSelectorRefusedAsDifferentSpec: `meshroll upgrade
// --namespace-selector k=v` creates the MeshUpgrade (the recorded install
// step) and then Start compares it with the spec it built. The selector the
// CLI parses has an empty, non-nil MatchExpressions that the stored object no
// longer has after its JSON round trip, so every such run was refused on its
// first attempt: "already exists with a different spec (phase )".
func TestDefectNamespaceSelectorRefusedAsDifferentSpec(t *testing.T) {
	sel, err := metav1.ParseToLabelSelector("meshroll.io/demo=bench-mr")
	if err != nil {
		t.Fatal(err)
	}
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "a-to-b"}, Spec: v1alpha1.MeshUpgradeSpec{
		From: "a", To: "b", Selection: v1alpha1.Selection{NamespaceSelector: sel},
	}}
	b, err := json.Marshal(mu)
	if err != nil {
		t.Fatal(err)
	}
	stored := &v1alpha1.MeshUpgrade{}
	if err := json.Unmarshal(b, stored); err != nil {
		t.Fatal(err)
	}
	if err := resumable(stored, mu); err != nil {
		t.Fatalf("the same spec after a round trip through the API server: %v", err)
	}
	other, err := metav1.ParseToLabelSelector("meshroll.io/demo=other")
	if err != nil {
		t.Fatal(err)
	}
	mu.Spec.Selection.NamespaceSelector = other
	if err := resumable(stored, mu); err == nil {
		t.Fatal("a different namespace selector was taken for the same spec")
	}
}
