package cli

import (
	"bytes"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/fleet"
)

func followStore(t *testing.T, fu *v1alpha1.FleetUpgrade) fleet.Store {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(fu)
	if err != nil {
		t.Fatal(err)
	}
	m["apiVersion"], m["kind"] = v1alpha1.GroupVersion.String(), "FleetUpgrade"
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.FleetUpgradeGVR: "FleetUpgradeList"})
	if _, err := dc.Resource(v1alpha1.FleetUpgradeGVR).Create(t.Context(), &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return fleet.Store{Dynamic: dc}
}

// TestFleetFollowsAnotherEngine: while the hub's controller runs a
// FleetUpgrade the CLI prints its history and ends with the run's outcome
// (halted: exit 3's error); a controller that records nothing (run with
// --no-fleet) is given up on after the pickup time, so the CLI runs it.
func TestFleetFollowsAnotherEngine(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	halted := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu"}, Status: v1alpha1.FleetUpgradeStatus{
		Phase: v1alpha1.FleetHalted, Message: "halted: preprod-1 failed",
		History: []v1alpha1.FleetEvent{{At: at, Type: "halt", Stage: "preprod", Message: "halted: preprod-1 failed"}}}}
	var out bytes.Buffer
	_, err := followFleetUpgrade(t.Context(), &out, followStore(t, halted), "fu", time.Millisecond, time.Second)
	if !errors.Is(err, fleet.ErrHalted) {
		t.Fatalf("following a halted FleetUpgrade: %v", err)
	}
	if out.String() != "" {
		t.Errorf("history before following started was printed again:\n%s", out.String())
	}
	idle := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu"}}
	if _, err := followFleetUpgrade(t.Context(), &out, followStore(t, idle), "fu", time.Millisecond, 50*time.Millisecond); !errors.Is(err, errNotPickedUp) {
		t.Fatalf("an untouched FleetUpgrade: %v, want errNotPickedUp", err)
	}
}
