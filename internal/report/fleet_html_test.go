package report

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// haltedFleet is a FleetUpgrade halted in preprod: testing and dev done,
// preprod failed and rolled back, prod never touched.
func haltedFleet() *v1alpha1.FleetUpgrade {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(m int) *metav1.Time { t := metav1.NewTime(t0.Add(time.Duration(m) * time.Minute)); return &t }
	gate := func(ok bool, ev string) []v1alpha1.FleetGate {
		return []v1alpha1.FleetGate{{Name: "readiness", Passed: ok, Evidence: ev, At: *at(9)}}
	}
	return &v1alpha1.FleetUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "planted"},
		Spec: v1alpha1.FleetUpgradeSpec{Version: "1.24.2", MaxConcurrent: 2, Stages: []v1alpha1.FleetStage{
			{Name: "early"}, {Name: "preprod"}, {Name: "prod", RequireApproval: true}}},
		Status: v1alpha1.FleetUpgradeStatus{
			Phase: v1alpha1.FleetHalted, CurrentStage: "preprod", StartedAt: at(0), CompletedAt: at(10),
			Message: "halted: 1 failed cluster(s) exceed the failure budget of 0: preprod-1 (member MeshUpgrade fleet-planted RolledBack: rollout failed); promotion stopped, untouched: prod-1",
			Stages:  []v1alpha1.FleetStageStatus{{Name: "early", State: v1alpha1.StageSucceeded}, {Name: "preprod", State: v1alpha1.StageHalted}, {Name: "prod", State: v1alpha1.StagePending}},
			Clusters: []v1alpha1.FleetClusterStatus{
				{Name: "testing-1", Stage: "early", Canary: true, State: v1alpha1.ClusterSucceeded, MemberPhase: v1alpha1.PhaseSucceeded,
					StartedAt: at(0), UpgradedAt: at(2), FinishedAt: at(3), Mix: map[string]int{"1.24.2": 4, "none": 1}, Gates: gate(true, "3/3 Deployments rolled out and available")},
				{Name: "dev-1", Stage: "early", State: v1alpha1.ClusterSucceeded, MemberPhase: v1alpha1.PhaseSucceeded,
					StartedAt: at(3), UpgradedAt: at(5), FinishedAt: at(6), Mix: map[string]int{"1.24.2": 4, "none": 1}},
				{Name: "preprod-1", Stage: "preprod", State: v1alpha1.ClusterFailed, MemberPhase: v1alpha1.PhaseRolledBack,
					StartedAt: at(7), FinishedAt: at(10), Message: "member MeshUpgrade fleet-planted RolledBack: rollout failed",
					Mix: map[string]int{"1.23.2": 4, "none": 1}, Gates: gate(false, "1/3 Deployments rolled out and available")},
				{Name: "prod-1", Stage: "prod", State: v1alpha1.ClusterPending},
			},
			History: []v1alpha1.FleetEvent{{At: *at(0), Type: "stage", Stage: "early", Message: "stage early started"},
				{At: *at(10), Type: "halt", Stage: "preprod", Message: "halted"}},
		},
	}
}

func TestFleetHTMLSaysWhyItHalted(t *testing.T) {
	var buf bytes.Buffer
	if err := FleetHTML(&buf, haltedFleet(), time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`<span class="badge big bad" id="phase">Halted</span>`,
		"untouched: prod-1",
		`<td class="mono">preprod-1</td><td>preprod</td><td><span class="badge bad">RolledBack</span></td>`,
		"stage preprod · Halted", "testing-1 (canary)", `title="1.24.2: 4"`, `title="1.23.2: 4"`,
		"1/3 Deployments rolled out and available", "--ok: #15803d", // the run report's stylesheet
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("page is not self-contained")
	}
}

func TestFleetHTMLScreenshot(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the chromium screenshot under -short (takes a few seconds)")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found on PATH; install it with `apt-get install chromium` to run the screenshot test")
	}
	var buf bytes.Buffer
	if err := FleetHTML(&buf, haltedFleet(), time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	img := shootPage(t, browser, buf.Bytes(), "fleet-halted")
	colours := histogram(img)
	if len(colours) < 200 {
		t.Errorf("screenshot has only %d distinct colours; the page looks blank", len(colours))
	}
	for what, hex := range map[string]string{"halted badge and failed bar": "#dc2626", "upgrade bars": "#2563eb",
		"soak bars": "#15803d", "1.23.2 mix": seriesColor(0), "1.24.2 mix": seriesColor(1)} {
		if n := near(colours, hex); n < 100 {
			t.Errorf("%s (%s) painted on %d pixels, want at least 100", what, hex, n)
		}
	}
}
