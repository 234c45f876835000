package fleet

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

func TestFreezeOrder(t *testing.T) {
	cl, stages, err := Freeze(fixtureSpec(), fixtureClusters(), "fu")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cl {
		s := c.Stage + "/" + c.Name
		if c.Canary {
			s += "*"
		}
		got = append(got, s)
	}
	want := "early/testing-1*,early/dev-1,early/dev-2,preprod/preprod-1,prod/prod-1*,prod/prod-2"
	if strings.Join(got, ",") != want {
		t.Errorf("plan = %s, want %s", strings.Join(got, ","), want)
	}
	if len(stages) != 3 || cl[0].MeshUpgrade != "fleet-fu" {
		t.Errorf("stages = %+v, member upgrade %q", stages, cl[0].MeshUpgrade)
	}
}

func TestFreezeRefuses(t *testing.T) {
	cases := map[string]struct {
		edit func(*v1alpha1.FleetUpgradeSpec)
		want string
	}{
		"selector matching no cluster": {func(s *v1alpha1.FleetUpgradeSpec) { s.Stages[1] = envStage("preprod", "staging") },
			`stage "preprod" selector "env in (staging)" matches no cluster`},
		"stage order skipping the canary": {func(s *v1alpha1.FleetUpgradeSpec) {
			s.Stages = []v1alpha1.FleetStage{envStage("preprod", "preprod"), envStage("early", "testing", "dev"), envStage("prod", "prod")}
			s.Canary = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "testing"}}
		}, `stage order skips the canary: stage "preprod" runs before stage "early"`},
		"cluster in two stages": {func(s *v1alpha1.FleetUpgradeSpec) { s.Stages[1] = envStage("preprod", "preprod", "dev") },
			`cluster "dev-1" is selected by stages "early" and "preprod"`},
		"canary matching nothing": {func(s *v1alpha1.FleetUpgradeSpec) {
			s.Canary = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "none"}}
		}, "matches no cluster of any stage"},
		"unknown approval": {func(s *v1alpha1.FleetUpgradeSpec) { s.Approved = []string{"qa"} }, `approved stage "qa" is not a stage`},
		"empty selector":   {func(s *v1alpha1.FleetUpgradeSpec) { s.Stages[2].Selector = metav1.LabelSelector{} }, `stage "prod" selector "" matches no cluster`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := fixtureSpec()
			tc.edit(&spec)
			_, _, err := Freeze(spec, fixtureClusters(), "fu")
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want InvalidError containing %q", err, tc.want)
			}
		})
	}
}

func TestApproveRefusesStageNotReached(t *testing.T) {
	fu := frozen(t, fixtureSpec())
	err := Approve(fu, "prod")
	if err == nil || !strings.Contains(err.Error(), `stage "prod" of FleetUpgrade "fu" is not reached yet: stage "early" is Pending`) {
		t.Fatalf("Approve(prod) before early ran: %v", err)
	}
	if err := Approve(fu, "qa"); err == nil || !strings.Contains(err.Error(), `has no stage "qa"`) {
		t.Fatalf("Approve(qa): %v", err)
	}
	fu.Status.Stages[0].State = v1alpha1.StageSucceeded
	fu.Status.Stages[1].State = v1alpha1.StageSucceeded
	if err := Approve(fu, "prod"); err != nil {
		t.Fatalf("Approve(prod) after preprod succeeded: %v", err)
	}
}
