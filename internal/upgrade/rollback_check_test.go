package upgrade

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gateway"
)

// TestDefect2CheckRollback pins the refusals a rollback gets before any
// write: From not installed (after a prune), a later upgrade that moved the
// same workloads, labels, tags or gateways, or a label changed by hand since.
func TestDefect2CheckRollback(t *testing.T) {
	at := func(m int) *metav1.Time {
		v := metav1.NewTime(freezeNow.Add(time.Duration(m) * time.Minute))
		return &v
	}
	mine := func() *v1alpha1.MeshUpgrade {
		mu := meshUpgrade("a", sizeCount(1))
		mu.Status.StartedAt = at(0)
		mu.Status.Workloads = []v1alpha1.WorkloadStatus{
			{Kind: "Deployment", Namespace: "shop", Name: "web", Wave: 1, Outcome: v1alpha1.OutcomeSucceeded},
			{Kind: "Deployment", Namespace: "shop", Name: "api", Wave: 1},
		}
		mu.Status.Namespaces = []v1alpha1.LabelMove{{Name: "shop", From: revOld, To: revNew, Wave: 1, Done: true}}
		mu.Status.Tags = []v1alpha1.LabelMove{{Name: "prod", From: revOld, To: revNew}}
		mu.Status.Gateways = []v1alpha1.GatewayFlip{{Namespace: "gw", Name: "edge", From: revOld, To: revNew, Done: true}}
		return mu
	}
	other := func(name string, started int, phase v1alpha1.Phase, wl string) v1alpha1.MeshUpgrade {
		o := meshUpgrade(name, sizeCount(1))
		o.Status.StartedAt, o.Status.Phase = at(started), phase
		ns, n, _ := strings.Cut(wl, "/")
		o.Status.Workloads = []v1alpha1.WorkloadStatus{{Kind: "Deployment", Namespace: ns, Name: n, Wave: 1, Outcome: v1alpha1.OutcomeSucceeded}}
		return *o
	}
	installed := map[string]bool{revOld: true, revNew: true}
	tests := []struct {
		name  string
		mu    *v1alpha1.MeshUpgrade
		facts RollbackFacts
		want  []string // substrings; none means allowed
	}{
		{name: "allowed", mu: mine(), facts: RollbackFacts{Installed: installed,
			Others:       []v1alpha1.MeshUpgrade{other("earlier", -5, v1alpha1.PhaseSucceeded, "shop/web"), other("later-rolled-back", 5, v1alpha1.PhaseRolledBack, "shop/web")},
			MovedBy:      map[string]string{"Deployment shop/api": "earlier"}, // recorded but never patched
			NamespaceRev: map[string]string{"shop": revNew}, TagRev: map[string]string{"prod": revOld}, GatewayRev: map[string]string{"gw/edge": revNew}}},
		{name: "from pruned", mu: func() *v1alpha1.MeshUpgrade {
			mu := mine()
			mu.Status.Steps = []v1alpha1.StepStatus{{Name: v1alpha1.StepPrune, State: v1alpha1.StepDone}}
			return mu
		}(), facts: RollbackFacts{Installed: map[string]bool{revNew: true}},
			want: []string{"revision 1-23-2 is not installed", "this upgrade pruned it", "meshroll revision install --version 1.23.2 --revision 1-23-2", "meshroll rollback a"}},
		{name: "later upgrade by record", mu: mine(), facts: RollbackFacts{Installed: installed,
			Others: []v1alpha1.MeshUpgrade{other("b", 5, v1alpha1.PhaseSucceeded, "shop/web")}},
			want: []string{`MeshUpgrade "b"`, "Deployment shop/web", "meshroll rollback b"}},
		{name: "later upgrade by label only (its record gone)", mu: mine(), facts: RollbackFacts{Installed: installed,
			MovedBy: map[string]string{"Deployment shop/web": "gone"}},
			want: []string{`MeshUpgrade "gone"`, "meshroll rollback gone"}},
		{name: "labels changed by hand since", mu: mine(), facts: RollbackFacts{Installed: installed,
			NamespaceRev: map[string]string{"shop": "1-25-0"}, TagRev: map[string]string{"prod": "1-25-0"}, GatewayRev: map[string]string{"gw/edge": "1-25-0"}},
			want: []string{"namespace shop is now labelled", "tag prod now points at 1-25-0", "gateway gw/edge now selects colour 1-25-0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRollback(tt.mu, tt.facts)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed; want a refusal with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestGatewayFlips(t *testing.T) {
	live := []gateway.Live{{Namespace: "a", Name: "edge", Revision: revOld}, {Namespace: "b", Name: "edge", Revision: revNew}, {Namespace: "c", Name: "dark"}}
	got := GatewayFlips(live, revOld, revNew)
	if len(got) != 1 || got[0] != (v1alpha1.GatewayFlip{Namespace: "a", Name: "edge", From: revOld, To: revNew}) {
		t.Errorf("GatewayFlips = %+v, want only a/edge from %s to %s", got, revOld, revNew)
	}
}

// TestDefectSameSecondLaterUpgradeTakenForEarlier: a MeshUpgrade's start is
// recorded in whole seconds, so a later upgrade B of a few workloads that
// started in the same second as A was taken for an earlier one, and
// rolling back A undid B (seen in CI: TestDefect2RollbackRefused). B's move
// made over A's, found in the workload's previous-template marks, now
// decides the order. A workload A moved that carries an earlier upgrade's
// label again, because A's own rollback was killed after handing it back,
// is no conflict (TestKilledAndResumed caught a first fix refusing that).
func TestDefectSameSecondLaterUpgradeTakenForEarlier(t *testing.T) {
	same := metav1.NewTime(freezeNow)
	upgradeAt := func(name string, phase v1alpha1.Phase) *v1alpha1.MeshUpgrade {
		mu := meshUpgrade(name, sizeCount(1))
		mu.Status.StartedAt, mu.Status.Phase = &same, phase
		mu.Status.Workloads = []v1alpha1.WorkloadStatus{{Kind: "Deployment", Namespace: "shop", Name: "web", Wave: 1, Outcome: v1alpha1.OutcomeSucceeded}}
		return mu
	}
	a, b := upgradeAt("a", v1alpha1.PhaseRollingBack), upgradeAt("b", v1alpha1.PhaseSucceeded)
	if startedAfter(b, a) || startedAfter(a, b) {
		t.Fatal("the fixture must have b and a start in the same second with the same creation time")
	}
	installed := map[string]bool{revOld: true, revNew: true}
	err := CheckRollback(a, RollbackFacts{Installed: installed, Others: []v1alpha1.MeshUpgrade{*b},
		MovedBy: map[string]string{"Deployment shop/web": "b"}, MovedOverMine: map[string]bool{"b": true}})
	if err == nil || !strings.Contains(err.Error(), `MeshUpgrade "b"`) || !strings.Contains(err.Error(), "meshroll rollback b") {
		t.Errorf("rollback of a after b moved over it in the same second: %v; want a refusal naming b", err)
	}
	// b ran before a; a's killed rollback handed shop/web back to b.
	if err := CheckRollback(a, RollbackFacts{Installed: installed, Others: []v1alpha1.MeshUpgrade{*b},
		MovedBy: map[string]string{"Deployment shop/web": "b"}}); err != nil {
		t.Errorf("rerun of a's interrupted rollback refused: %v", err)
	}
}
