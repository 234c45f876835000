package fleet

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// t0 is the fixtures' clock.
var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// fixtureClusters is a fleet of six: one testing canary, two dev, one
// preprod, two prod.
func fixtureClusters() []Cluster {
	mk := func(name, env string) Cluster {
		return Cluster{Name: name, Labels: map[string]string{"env": env}, Source: "test"}
	}
	cs := []Cluster{mk("testing-1", "testing"), mk("dev-1", "dev"), mk("dev-2", "dev"), mk("preprod-1", "preprod"), mk("prod-1", "prod"), mk("prod-2", "prod")}
	cs[0].Labels["tier"] = "canary"
	cs[4].Labels["tier"] = "canary"
	return cs
}

func envStage(name string, envs ...string) v1alpha1.FleetStage {
	return v1alpha1.FleetStage{Name: name, Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: envs}}}}
}

// fixtureSpec: testing+dev, then preprod (soak 10m), then prod (approval).
func fixtureSpec() v1alpha1.FleetUpgradeSpec {
	pre := envStage("preprod", "preprod")
	pre.Soak = metav1.Duration{Duration: 10 * time.Minute}
	prod := envStage("prod", "prod")
	prod.RequireApproval = true
	return v1alpha1.FleetUpgradeSpec{
		Version:       "1.24.2",
		Stages:        []v1alpha1.FleetStage{envStage("early", "testing", "dev"), pre, prod},
		Canary:        &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "canary"}},
		MaxConcurrent: 2, ClusterSoak: metav1.Duration{Duration: 5 * time.Minute},
	}
}

// frozen returns a FleetUpgrade with its plan frozen.
func frozen(t *testing.T, spec v1alpha1.FleetUpgradeSpec) *v1alpha1.FleetUpgrade {
	t.Helper()
	cl, stages, err := Freeze(spec, fixtureClusters(), "fu")
	if err != nil {
		t.Fatal(err)
	}
	return &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu", Generation: 1}, Spec: spec,
		Status: v1alpha1.FleetUpgradeStatus{Clusters: cl, Stages: stages, Phase: v1alpha1.FleetPending}}
}

// succeeded is the observation of a member whose upgrade succeeded and
// whose gates pass.
func succeeded() Observation {
	return Observation{Phase: v1alpha1.PhaseSucceeded, Gates: []v1alpha1.FleetGate{{Name: "readiness", Passed: true}}}
}
