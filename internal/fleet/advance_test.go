package fleet

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// sim drives Advance tick by tick against simulated members: a member whose
// upgrade was asked for succeeds on the next tick unless outcome says
// otherwise.
type sim struct {
	t       *testing.T
	fu      *v1alpha1.FleetUpgrade
	now     time.Time
	phase   map[string]v1alpha1.Phase
	outcome map[string]Observation // overrides per cluster
	started []string               // Upgrade actions in order, first time each
	rolled  []string
}

func newSim(t *testing.T, fu *v1alpha1.FleetUpgrade) *sim {
	return &sim{t: t, fu: fu, now: t0, phase: map[string]v1alpha1.Phase{}, outcome: map[string]Observation{}}
}

func (s *sim) tick() []Action {
	s.t.Helper()
	obs := map[string]Observation{}
	for _, name := range Watched(&s.fu.Status) {
		if o, ok := s.outcome[name]; ok {
			obs[name] = o
			continue
		}
		o := succeeded()
		o.Phase = s.phase[name]
		obs[name] = o
	}
	st, actions, err := Advance(s.fu, obs, s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	s.fu.Status = st
	for _, a := range actions {
		switch a.Kind {
		case ActionUpgrade:
			if s.phase[a.Cluster] == "" {
				s.started = append(s.started, a.Cluster)
				s.phase[a.Cluster] = v1alpha1.PhaseSucceeded
			}
		case ActionRollback:
			if s.phase[a.Cluster] != v1alpha1.PhaseRolledBack {
				s.rolled = append(s.rolled, a.Cluster)
				s.phase[a.Cluster] = v1alpha1.PhaseRolledBack
			}
		}
	}
	s.now = s.now.Add(time.Minute)
	return actions
}

// run ticks until the phase is final or waits for approval.
func (s *sim) run(limit int) {
	for range limit {
		s.tick()
		if s.fu.Status.Phase.Final() || s.fu.Status.Phase == v1alpha1.FleetWaitingApproval {
			return
		}
	}
	s.t.Fatalf("no final phase after %d ticks: %s %s", limit, s.fu.Status.Phase, s.fu.Status.Message)
}

func TestAdvanceStagesCanariesSoakApproval(t *testing.T) {
	s := newSim(t, frozen(t, fixtureSpec()))
	s.tick()
	if strings.Join(s.started, ",") != "testing-1" {
		t.Fatalf("first tick started %v, want the canary alone", s.started)
	}
	// The canary soaks 5 minutes before dev starts.
	for range 5 {
		s.tick()
		if len(s.started) != 1 {
			t.Fatalf("started %v while the canary soaked (%s)", s.started, s.now)
		}
	}
	s.run(100)
	if s.fu.Status.Phase != v1alpha1.FleetWaitingApproval || s.fu.Status.CurrentStage != "prod" {
		t.Fatalf("phase %s stage %s, want WaitingApproval at prod", s.fu.Status.Phase, s.fu.Status.CurrentStage)
	}
	if got := strings.Join(s.started, ","); got != "testing-1,dev-1,dev-2,preprod-1" {
		t.Fatalf("started %s", got)
	}
	// preprod's stage soak: 10 minutes after preprod-1 finished its own.
	var preDone, prodWait time.Time
	for _, e := range s.fu.Status.History {
		if e.Type == "cluster" && e.Cluster == "preprod-1" && strings.HasPrefix(e.Message, "succeeded") {
			preDone = e.At.Time
		}
		if e.Type == "approval" && e.Stage == "prod" {
			prodWait = e.At.Time
		}
	}
	if prodWait.Sub(preDone) < 10*time.Minute {
		t.Errorf("prod reached %s after preprod-1 finished, want the 10m stage soak", prodWait.Sub(preDone))
	}
	for range 3 {
		if s.tick(); len(s.started) != 4 {
			t.Fatalf("prod started without approval: %v", s.started)
		}
	}
	s.fu.Spec.Approved = []string{"prod"}
	s.run(100)
	if s.fu.Status.Phase != v1alpha1.FleetSucceeded {
		t.Fatalf("phase %s: %s", s.fu.Status.Phase, s.fu.Status.Message)
	}
	if got := strings.Join(s.started, ","); got != "testing-1,dev-1,dev-2,preprod-1,prod-1,prod-2" {
		t.Fatalf("started %s", got)
	}
}

// TestAdvanceFailureHaltsPromotion: a failed preprod member halts the run; no
// prod cluster is ever asked to upgrade, and the halt says why.
func TestAdvanceFailureHaltsPromotion(t *testing.T) {
	spec := fixtureSpec()
	spec.Approved = []string{"prod"}
	s := newSim(t, frozen(t, spec))
	s.outcome["preprod-1"] = Observation{Phase: v1alpha1.PhaseRolledBack, Message: "rollout of Deployment a/b failed"}
	s.run(100)
	if s.fu.Status.Phase != v1alpha1.FleetHalted {
		t.Fatalf("phase %s, want Halted", s.fu.Status.Phase)
	}
	for _, c := range s.fu.Status.Clusters {
		if c.Stage == "prod" && c.State != v1alpha1.ClusterPending {
			t.Errorf("prod cluster %s is %s", c.Name, c.State)
		}
	}
	if !strings.Contains(s.fu.Status.Message, "preprod-1 (member MeshUpgrade fleet-fu RolledBack: rollout of Deployment a/b failed)") ||
		!strings.Contains(s.fu.Status.Message, "untouched: prod-1, prod-2") {
		t.Errorf("message = %s", s.fu.Status.Message)
	}
	for range 5 {
		if a := s.tick(); len(a) != 0 {
			t.Fatalf("halted run still acts: %v", a)
		}
	}
}

func TestAdvanceBudgetLetsOneFailurePass(t *testing.T) {
	spec := fixtureSpec()
	spec.Approved, spec.MaxFailedClusters = []string{"prod"}, 1
	s := newSim(t, frozen(t, spec))
	s.outcome["dev-2"] = Observation{Phase: v1alpha1.PhaseHalted, Message: "gate failed"}
	s.run(200)
	if s.fu.Status.Phase != v1alpha1.FleetSucceeded || len(s.started) != 6 {
		t.Fatalf("phase %s, started %v", s.fu.Status.Phase, s.started)
	}
}

func TestAdvanceUnreachableMember(t *testing.T) {
	for _, policy := range []v1alpha1.UnreachablePolicy{v1alpha1.UnreachableWait, v1alpha1.UnreachableHalt} {
		t.Run(string(policy), func(t *testing.T) {
			spec := fixtureSpec()
			spec.Unreachable = policy
			spec.ProgressDeadline.Duration = 10 * time.Minute
			s := newSim(t, frozen(t, spec))
			s.outcome["testing-1"] = Observation{Err: "dial tcp 127.0.0.1:1: connection refused"}
			s.tick()
			s.tick()
			if policy == v1alpha1.UnreachableHalt {
				if s.fu.Status.Phase != v1alpha1.FleetHalted || !strings.Contains(s.fu.Status.Message, "unreachable policy is Halt") {
					t.Fatalf("phase %s: %s", s.fu.Status.Phase, s.fu.Status.Message)
				}
				return
			}
			if s.fu.Status.Phase != v1alpha1.FleetWaitingForMember {
				t.Fatalf("phase %s: %s", s.fu.Status.Phase, s.fu.Status.Message)
			}
			if c := cond(s.fu, v1alpha1.FleetConditionReachable); c == nil || c.Reason != v1alpha1.ReasonMemberUnreachable || !strings.Contains(c.Message, "testing-1") {
				t.Fatalf("condition = %+v", c)
			}
			delete(s.outcome, "testing-1") // back within the deadline: the run goes on
			s.tick()
			if c := cond(s.fu, v1alpha1.FleetConditionReachable); c.Status != "True" || s.fu.Status.Clusters[0].State != v1alpha1.ClusterSoaking {
				t.Fatalf("after recovery: %+v, cluster %s", c, s.fu.Status.Clusters[0].State)
			}
			// Unreachable past the deadline fails the cluster.
			s2 := newSim(t, frozen(t, spec))
			s2.outcome["testing-1"] = Observation{Err: "timeout"}
			s2.run(20)
			if s2.fu.Status.Phase != v1alpha1.FleetHalted || !strings.Contains(s2.fu.Status.Message, v1alpha1.ReasonDeadlineExceeded) {
				t.Fatalf("past the deadline: %s %s", s2.fu.Status.Phase, s2.fu.Status.Message)
			}
		})
	}
}

func TestAdvanceGateFailsDuringSoak(t *testing.T) {
	s := newSim(t, frozen(t, fixtureSpec()))
	s.tick()
	s.tick() // testing-1 soaking
	s.outcome["testing-1"] = Observation{Phase: v1alpha1.PhaseSucceeded, Gates: []v1alpha1.FleetGate{{Name: "readiness", Passed: false, Evidence: "3/4 Deployments available"}}}
	s.tick()
	if s.fu.Status.Phase != v1alpha1.FleetHalted || !strings.Contains(s.fu.Status.Message, "gate readiness failed: 3/4 Deployments available") {
		t.Fatalf("phase %s: %s", s.fu.Status.Phase, s.fu.Status.Message)
	}
}

func TestAdvanceRollbackReverseOrder(t *testing.T) {
	spec := fixtureSpec()
	spec.Approved = []string{"prod"}
	s := newSim(t, frozen(t, spec))
	s.outcome["preprod-1"] = Observation{Phase: v1alpha1.PhaseRolledBack}
	s.run(100)
	s.fu.Spec.RollbackRequested = true
	delete(s.outcome, "preprod-1")
	s.phase["preprod-1"] = v1alpha1.PhaseRolledBack
	for range 20 {
		if s.tick(); s.fu.Status.Phase == v1alpha1.FleetRolledBack {
			break
		}
	}
	if s.fu.Status.Phase != v1alpha1.FleetRolledBack {
		t.Fatalf("phase %s", s.fu.Status.Phase)
	}
	if got := strings.Join(s.rolled, ","); got != "dev-2,dev-1,testing-1" {
		t.Errorf("rolled back %s, want dev-2,dev-1,testing-1 (preprod-1 rolled itself back, prod untouched)", got)
	}
}

func cond(fu *v1alpha1.FleetUpgrade, typ string) *struct{ Status, Reason, Message string } {
	for _, c := range fu.Status.Conditions {
		if c.Type == typ {
			return &struct{ Status, Reason, Message string }{string(c.Status), c.Reason, c.Message}
		}
	}
	return nil
}

// TestAdvanceMemberAlreadyOnTarget: a member whose every sidecar already
// runs the target (an earlier FleetUpgrade moved it) soaks and succeeds
// although its own upgrade run refused ("nothing to migrate").
func TestAdvanceMemberAlreadyOnTarget(t *testing.T) {
	s := newSim(t, frozen(t, fixtureSpec()))
	s.outcome["testing-1"] = Observation{UpToDate: true, DriverErr: "nothing to migrate", Gates: succeeded().Gates}
	for range 8 {
		s.tick()
	}
	c := s.fu.Status.Clusters[0]
	if c.Name != "testing-1" || c.State != v1alpha1.ClusterSucceeded || c.Message != "already on 1.24.2: nothing to migrate" {
		t.Fatalf("testing-1 = %s %q", c.State, c.Message)
	}
}

// TestAdvanceRollbackSkipsClustersAlreadyOnTarget: a cluster that was
// already on the target (no MeshUpgrade of this run) is not rolled back.
func TestAdvanceRollbackSkipsClustersAlreadyOnTarget(t *testing.T) {
	spec := fixtureSpec()
	spec.Approved = []string{"prod"}
	s := newSim(t, frozen(t, spec))
	s.outcome["dev-1"] = Observation{UpToDate: true, Gates: succeeded().Gates}
	s.run(200)
	if s.fu.Status.Phase != v1alpha1.FleetSucceeded {
		t.Fatalf("phase %s", s.fu.Status.Phase)
	}
	if got := strings.Join(RollbackOrder(&s.fu.Status), ","); got != "prod-2,prod-1,preprod-1,dev-2,testing-1" {
		t.Fatalf("rollback order %s", got)
	}
	delete(s.outcome, "dev-1")
	s.fu.Spec.RollbackRequested = true
	for range 30 {
		if s.tick(); s.fu.Status.Phase == v1alpha1.FleetRolledBack {
			break
		}
	}
	if got := strings.Join(s.rolled, ","); s.fu.Status.Phase != v1alpha1.FleetRolledBack || got != "prod-2,prod-1,preprod-1,dev-2,testing-1" {
		t.Fatalf("phase %s, rolled back %s", s.fu.Status.Phase, got)
	}
}

// TestAdvancePausedStartsNothing: spec.paused (from Git) holds promotion: no
// stage and no cluster starts, one "pause" event is recorded however many
// ticks pass, and clearing it resumes where the rollout stood.
func TestAdvancePausedStartsNothing(t *testing.T) {
	spec := fixtureSpec()
	spec.Paused = true
	s := newSim(t, frozen(t, spec))
	for range 3 {
		if acts := s.tick(); len(acts) > 0 {
			t.Fatalf("paused rollout asked for %v", acts)
		}
	}
	c := findCondition(s.fu.Status.Conditions, v1alpha1.FleetConditionProgressing)
	if c == nil || c.Reason != v1alpha1.ReasonPaused || !strings.Contains(s.fu.Status.Message, "spec.paused") {
		t.Fatalf("paused: condition %+v, message %q", c, s.fu.Status.Message)
	}
	pauses := 0
	for _, ev := range s.fu.Status.History {
		if ev.Type == "pause" {
			pauses++
		}
	}
	if pauses != 1 {
		t.Errorf("%d pause events over 3 ticks, want 1", pauses)
	}
	s.fu.Spec.Paused = false
	s.tick()
	if strings.Join(s.started, ",") != "testing-1" {
		t.Fatalf("after unpausing started %v, want the canary", s.started)
	}
	// Paused mid-stage: what is in flight goes on, nothing new starts.
	s.fu.Spec.Paused = true
	for range 20 {
		s.tick()
	}
	if s.fu.Status.Phase.Final() || strings.Join(s.started, ",") != "testing-1" {
		t.Fatalf("paused mid-stage: phase %s, started %v", s.fu.Status.Phase, s.started)
	}
}

func findCondition(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}
