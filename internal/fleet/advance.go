package fleet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Observation is what the engine saw of one member this tick.
type Observation struct {
	// Err is set when the member could not be reached.
	Err string
	// Phase is the member MeshUpgrade's phase ("" when it does not exist).
	Phase   v1alpha1.Phase
	Message string
	// DriverErr is the last error of the member's upgrade or rollback run
	// when it ended without a final phase (e.g. refused before any write).
	DriverErr string
	// Gates are the member's gates now (readiness first).
	Gates []v1alpha1.FleetGate
	Mix   map[string]int
	// UpToDate says every sidecar of the member already runs the target
	// version: with no MeshUpgrade of its own, the cluster has nothing to
	// migrate (a rerun after an earlier FleetUpgrade moved it).
	UpToDate bool
}

// holds reports whether the member's gates pass now, and why not.
func (o Observation) holds() (bool, string) {
	if o.Err != "" {
		return false, "unreachable: " + o.Err
	}
	if o.Phase != v1alpha1.PhaseSucceeded && (o.Phase != "" || !o.UpToDate) {
		return false, fmt.Sprintf("member MeshUpgrade is %s", orDash(string(o.Phase)))
	}
	for _, g := range o.Gates {
		if !g.Passed {
			return false, fmt.Sprintf("gate %s failed: %s", g.Name, g.Evidence)
		}
	}
	return true, ""
}

func orDash(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

// ActionKind is what the engine must keep running for a cluster.
type ActionKind string

// Actions.
const (
	ActionUpgrade  ActionKind = "Upgrade"
	ActionRollback ActionKind = "Rollback"
)

// Action asks the engine to make sure a member's upgrade (or rollback) runs:
// started, or resumed when the run driving it ended without a final phase.
type Action struct {
	Kind    ActionKind
	Cluster string
}

// Defaults of a FleetUpgradeSpec.
const (
	DefaultProgressDeadline = 30 * time.Minute
	historyLimit            = 200
)

// Watched are the clusters whose observation Advance needs: those in flight
// and, while their stage soaks, those that finished.
func Watched(st *v1alpha1.FleetUpgradeStatus) []string {
	var out []string
	for _, c := range st.Clusters {
		switch c.State {
		case v1alpha1.ClusterUpgrading, v1alpha1.ClusterSoaking, v1alpha1.ClusterRollingBack:
			out = append(out, c.Name)
		case v1alpha1.ClusterSucceeded:
			if s := stageStatus(st, c.Stage); s != nil && s.State == v1alpha1.StageSoaking {
				out = append(out, c.Name)
			}
		}
	}
	return out
}

// Advance is the fleet's decision: from the recorded status, the
// observations of the watched clusters and now, the next status and the
// member runs that must be going. It is pure (no client, no clock), so every
// rule (canaries first, max at once, soak, deadline, budget, approvals, halt,
// reverse-order rollback) is a table test.
func Advance(fu *v1alpha1.FleetUpgrade, obs map[string]Observation, now time.Time) (v1alpha1.FleetUpgradeStatus, []Action, error) {
	st := *fu.Status.DeepCopy()
	if len(st.Clusters) == 0 {
		return st, nil, errNoPlan
	}
	a := &advancer{spec: fu.Spec, st: &st, obs: obs, now: metav1.NewTime(now), gen: fu.Generation}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.FleetConditionProgressing); c != nil {
		a.wasPaused = c.Reason == v1alpha1.ReasonPaused
	}
	if st.StartedAt == nil {
		st.StartedAt = &a.now
	}
	st.ObservedGeneration = fu.Generation
	if fu.Spec.RollbackRequested && st.Phase != v1alpha1.FleetRolledBack {
		a.rollback()
		return st, a.actions, nil
	}
	if st.Phase.Final() {
		return st, nil, nil
	}
	a.observe()
	a.progress()
	return st, a.actions, nil
}

type advancer struct {
	spec    v1alpha1.FleetUpgradeSpec
	st      *v1alpha1.FleetUpgradeStatus
	obs     map[string]Observation
	now     metav1.Time
	gen     int64
	actions []Action
	// wasPaused: the recorded status already says spec.paused holds the
	// rollout (its history has the event).
	wasPaused bool
}

func (a *advancer) event(typ, stage, cluster, format string, args ...any) {
	a.st.History = append(a.st.History, v1alpha1.FleetEvent{At: a.now, Type: typ, Stage: stage, Cluster: cluster, Message: fmt.Sprintf(format, args...)})
	if n := len(a.st.History); n > historyLimit {
		a.st.History = a.st.History[n-historyLimit:]
	}
}

func (a *advancer) setPhase(p v1alpha1.FleetPhase, msg string) {
	a.st.Phase, a.st.Message = p, msg
	if p.Final() && a.st.CompletedAt == nil {
		a.st.CompletedAt = &a.now
	}
}

func (a *advancer) condition(typ string, s metav1.ConditionStatus, reason, msg string) {
	c := metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: a.gen, LastTransitionTime: a.now}
	for i := range a.st.Conditions {
		if a.st.Conditions[i].Type == typ {
			if a.st.Conditions[i].Status == s {
				c.LastTransitionTime = a.st.Conditions[i].LastTransitionTime
			}
			a.st.Conditions[i] = c
			return
		}
	}
	a.st.Conditions = append(a.st.Conditions, c)
}

func (a *advancer) deadline() time.Duration {
	if d := a.spec.ProgressDeadline.Duration; d > 0 {
		return d
	}
	return DefaultProgressDeadline
}

func (a *advancer) fail(c *v1alpha1.FleetClusterStatus, why string) {
	c.State, c.Message, c.FinishedAt = v1alpha1.ClusterFailed, why, &a.now
	a.event("cluster", c.Stage, c.Name, "failed: %s", why)
}

// observe moves the clusters in flight according to what was seen.
func (a *advancer) observe() {
	var unreachable []string
	for i := range a.st.Clusters {
		c := &a.st.Clusters[i]
		if c.State != v1alpha1.ClusterUpgrading && c.State != v1alpha1.ClusterSoaking && c.State != v1alpha1.ClusterSucceeded {
			continue
		}
		o, seen := a.obs[c.Name]
		if !seen {
			continue
		}
		if o.Err != "" {
			c.Unreachable = o.Err
			unreachable = append(unreachable, c.Name)
			if c.State != v1alpha1.ClusterSucceeded && a.spec.Unreachable == v1alpha1.UnreachableHalt {
				a.fail(c, "member unreachable and the unreachable policy is Halt: "+o.Err)
				continue
			}
		} else {
			c.Unreachable = ""
			c.MemberPhase, c.Gates = o.Phase, o.Gates
			if o.Mix != nil {
				c.Mix = o.Mix
			}
		}
		switch c.State {
		case v1alpha1.ClusterUpgrading:
			a.upgrading(c, o)
		case v1alpha1.ClusterSoaking:
			if ok, why := o.holds(); !ok && o.Err == "" {
				a.fail(c, "gates did not hold through the cluster's soak: "+why)
			} else if ok && !a.now.Before(&metav1.Time{Time: c.UpgradedAt.Add(a.spec.ClusterSoak.Duration)}) {
				c.State, c.FinishedAt = v1alpha1.ClusterSucceeded, &a.now
				a.event("cluster", c.Stage, c.Name, "succeeded: gates held through %s of soak", a.spec.ClusterSoak.Duration)
			}
		case v1alpha1.ClusterSucceeded: // its stage soaks
			if ok, why := o.holds(); !ok && o.Err == "" {
				a.fail(c, "gates did not hold through the stage's soak: "+why)
			}
		}
	}
	if len(unreachable) > 0 {
		a.condition(v1alpha1.FleetConditionReachable, metav1.ConditionFalse, v1alpha1.ReasonMemberUnreachable,
			fmt.Sprintf("cannot reach %s; policy %s", strings.Join(unreachable, ", "), orDefault(string(a.spec.Unreachable), "Wait")))
	} else {
		a.condition(v1alpha1.FleetConditionReachable, metav1.ConditionTrue, "AllReachable", "every member in flight answers")
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (a *advancer) upgrading(c *v1alpha1.FleetClusterStatus, o Observation) {
	if o.Err == "" {
		switch o.Phase {
		case v1alpha1.PhaseSucceeded:
			c.State, c.UpgradedAt, c.Message = v1alpha1.ClusterSoaking, &a.now, ""
			a.event("cluster", c.Stage, c.Name, "MeshUpgrade %s succeeded; soaking %s", c.MeshUpgrade, a.spec.ClusterSoak.Duration)
			return
		case v1alpha1.PhaseHalted, v1alpha1.PhaseRolledBack:
			a.fail(c, fmt.Sprintf("member MeshUpgrade %s %s: %s", c.MeshUpgrade, o.Phase, o.Message))
			return
		case "":
			if o.UpToDate {
				c.State, c.UpgradedAt, c.Message = v1alpha1.ClusterSoaking, &a.now, "already on "+a.spec.Version+": nothing to migrate"
				a.event("cluster", c.Stage, c.Name, "every sidecar already runs %s: nothing to migrate; soaking %s", a.spec.Version, a.spec.ClusterSoak.Duration)
				return
			}
			if o.DriverErr != "" {
				a.fail(c, "the member refused the upgrade before any change: "+o.DriverErr)
				return
			}
		}
	}
	if c.StartedAt != nil && a.now.Sub(c.StartedAt.Time) > a.deadline() {
		a.fail(c, fmt.Sprintf("%s: not finished %s after it started (member phase %s)", v1alpha1.ReasonDeadlineExceeded, a.deadline(), orDash(string(c.MemberPhase))))
		return
	}
	a.actions = append(a.actions, Action{Kind: ActionUpgrade, Cluster: c.Name})
}

// progress halts on a spent budget, or moves the current stage on.
func (a *advancer) progress() {
	var failed []string
	for _, c := range a.st.Clusters {
		if c.State == v1alpha1.ClusterFailed {
			failed = append(failed, c.Name+" ("+c.Message+")")
		}
	}
	if len(failed) > a.spec.MaxFailedClusters {
		a.halt(failed)
		return
	}
	for i := range a.st.Stages {
		s := &a.st.Stages[i]
		if s.State == v1alpha1.StageSucceeded {
			continue
		}
		a.st.CurrentStage = s.Name
		a.stage(i, s)
		return
	}
	a.st.CurrentStage = ""
	a.setPhase(v1alpha1.FleetSucceeded, fmt.Sprintf("every stage succeeded; %d cluster(s) on %s", a.count(v1alpha1.ClusterSucceeded), a.spec.Version))
	a.condition(v1alpha1.FleetConditionProgressing, metav1.ConditionFalse, "Succeeded", a.st.Message)
	a.event("fleet", "", "", "%s", a.st.Message)
}

func (a *advancer) count(state v1alpha1.ClusterState) int {
	n := 0
	for _, c := range a.st.Clusters {
		if c.State == state {
			n++
		}
	}
	return n
}

func (a *advancer) halt(failed []string) {
	var untouched []string
	for i := range a.st.Clusters {
		if a.st.Clusters[i].State == v1alpha1.ClusterPending {
			untouched = append(untouched, a.st.Clusters[i].Name)
		}
	}
	for i := range a.st.Stages {
		if s := &a.st.Stages[i]; s.State != v1alpha1.StageSucceeded && s.State != v1alpha1.StagePending {
			s.State = v1alpha1.StageHalted
		}
	}
	msg := fmt.Sprintf("halted: %d failed cluster(s) exceed the failure budget of %d: %s; promotion stopped, untouched: %s",
		len(failed), a.spec.MaxFailedClusters, strings.Join(failed, "; "), orDefault(strings.Join(untouched, ", "), "none"))
	a.setPhase(v1alpha1.FleetHalted, msg)
	a.condition(v1alpha1.FleetConditionHalted, metav1.ConditionTrue, v1alpha1.ReasonClusterFailed, msg)
	a.condition(v1alpha1.FleetConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonClusterFailed, msg)
	a.event("halt", a.st.CurrentStage, "", "%s", msg)
	// A cluster still upgrading when the budget ran out is left to finish
	// (its own MeshUpgrade decides success or rollback); nothing new starts.
}

func (a *advancer) stage(i int, s *v1alpha1.FleetStageStatus) {
	spec := a.spec.Stages[i]
	switch s.State {
	case v1alpha1.StagePending, v1alpha1.StageAwaitingApprove:
		if spec.RequireApproval && !slices.Contains(a.spec.Approved, spec.Name) {
			if s.State != v1alpha1.StageAwaitingApprove {
				a.event("approval", s.Name, "", "stage %s waits for approval: meshroll fleet approve <upgrade> %s", s.Name, s.Name)
			}
			s.State = v1alpha1.StageAwaitingApprove
			msg := fmt.Sprintf("stage %s waits for approval (meshroll fleet approve or spec.approved)", s.Name)
			a.setPhase(v1alpha1.FleetWaitingApproval, msg)
			a.condition(v1alpha1.FleetConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval, msg)
			return
		}
		if a.spec.Paused {
			a.hold(s.Name)
			return
		}
		if spec.RequireApproval {
			s.ApprovedAt = &a.now
			a.event("approval", s.Name, "", "stage %s approved", s.Name)
		}
		s.State, s.StartedAt = v1alpha1.StageProgressing, &a.now
		a.event("stage", s.Name, "", "stage %s started", s.Name)
		fallthrough
	case v1alpha1.StageProgressing:
		a.startClusters(s)
	case v1alpha1.StageSoaking:
		if s.SoakUntil != nil && a.now.Before(s.SoakUntil) {
			a.setPhase(v1alpha1.FleetSoaking, fmt.Sprintf("stage %s soaks until %s", s.Name, s.SoakUntil.UTC().Format(time.RFC3339)))
			return
		}
		s.State, s.FinishedAt = v1alpha1.StageSucceeded, &a.now
		a.event("stage", s.Name, "", "stage %s succeeded; gates held through %s of soak", s.Name, spec.Soak.Duration)
		a.progress() // the next stage may start in the same decision
	}
}

// startClusters starts the stage's clusters in plan order: canaries one at a
// time, each finished before anything else of the stage; then up to
// maxConcurrent at once.
func (a *advancer) startClusters(s *v1alpha1.FleetStageStatus) {
	limit := max(a.spec.MaxConcurrent, 1)
	active, open, canaryOpen := 0, 0, false
	var idx []int
	for i := range a.st.Clusters {
		c := &a.st.Clusters[i]
		if c.Stage != s.Name {
			continue
		}
		idx = append(idx, i)
		switch c.State {
		case v1alpha1.ClusterUpgrading, v1alpha1.ClusterSoaking:
			active++
			open++
			canaryOpen = canaryOpen || c.Canary
		case v1alpha1.ClusterPending:
			open++
		}
	}
	for _, i := range idx {
		c := &a.st.Clusters[i]
		if c.State != v1alpha1.ClusterPending {
			continue
		}
		if a.spec.Paused || canaryOpen || active >= limit || (c.Canary && active > 0) {
			break
		}
		c.State, c.StartedAt = v1alpha1.ClusterUpgrading, &a.now
		a.event("cluster", c.Stage, c.Name, "upgrade started (MeshUpgrade %s to %s)", c.MeshUpgrade, a.spec.Version)
		a.actions = append(a.actions, Action{Kind: ActionUpgrade, Cluster: c.Name})
		active++
		canaryOpen = c.Canary
	}
	if open > 0 {
		a.setPhase(v1alpha1.FleetProgressing, fmt.Sprintf("stage %s: %d cluster(s) in flight", s.Name, active))
		if a.unreachableInFlight(s.Name) {
			a.setPhase(v1alpha1.FleetWaitingForMember, fmt.Sprintf("stage %s waits for an unreachable member (policy Wait, deadline %s)", s.Name, a.deadline()))
		}
		a.condition(v1alpha1.FleetConditionProgressing, metav1.ConditionTrue, "StageProgressing", a.st.Message)
		if a.spec.Paused && active < open {
			a.hold(s.Name)
		}
		return
	}
	until := metav1.NewTime(a.now.Add(a.spec.Stages[a.stageIndex(s.Name)].Soak.Duration))
	s.State, s.SoakUntil = v1alpha1.StageSoaking, &until
	a.event("stage", s.Name, "", "every cluster of stage %s finished; soaking until %s", s.Name, until.UTC().Format(time.RFC3339))
	a.stage(a.stageIndex(s.Name), s)
}

// hold records that spec.paused keeps the stage's next clusters (or the
// stage itself) from starting; what is in flight goes on.
func (a *advancer) hold(stage string) {
	msg := fmt.Sprintf("paused (spec.paused): stage %s starts no cluster until spec.paused is false", stage)
	if !a.wasPaused {
		a.event("pause", stage, "", "%s", msg)
	}
	if a.st.Phase != v1alpha1.FleetWaitingForMember {
		a.setPhase(v1alpha1.FleetProgressing, msg)
	}
	a.condition(v1alpha1.FleetConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonPaused, msg)
}

func (a *advancer) unreachableInFlight(stage string) bool {
	for _, c := range a.st.Clusters {
		if c.Stage == stage && c.Unreachable != "" && (c.State == v1alpha1.ClusterUpgrading || c.State == v1alpha1.ClusterSoaking) {
			return true
		}
	}
	return false
}

func (a *advancer) stageIndex(name string) int {
	return slices.IndexFunc(a.spec.Stages, func(s v1alpha1.FleetStage) bool { return s.Name == name })
}

// needsRollback says whether the run changed a cluster that a rollback must
// restore: not one it never started, one already rolled back, one whose
// member rolled itself back, or one that was already on the target (no
// MeshUpgrade of this run exists there).
func needsRollback(c *v1alpha1.FleetClusterStatus) bool {
	switch c.State {
	case v1alpha1.ClusterPending, v1alpha1.ClusterRolledBack:
		return false
	case v1alpha1.ClusterFailed:
		return c.MemberPhase != v1alpha1.PhaseRolledBack && c.MemberPhase != ""
	case v1alpha1.ClusterSucceeded, v1alpha1.ClusterSoaking:
		return c.MemberPhase != ""
	}
	return true // upgrading (its MeshUpgrade may exist by now) or rolling back
}

// RollbackOrder lists the clusters a rollback restores, in the order it
// restores them: the reverse of the order they were upgraded.
func RollbackOrder(st *v1alpha1.FleetUpgradeStatus) []string {
	var out []string
	for i := len(st.Clusters) - 1; i >= 0; i-- {
		if needsRollback(&st.Clusters[i]) {
			out = append(out, st.Clusters[i].Name)
		}
	}
	return out
}

// rollback rolls back, one at a time and newest first, every cluster the
// run changed (needsRollback).
func (a *advancer) rollback() {
	if a.st.Phase != v1alpha1.FleetRollingBack {
		a.event("rollback", "", "", "rollback requested: clusters roll back in reverse order")
		a.st.CompletedAt = nil
	}
	a.st.Phase = v1alpha1.FleetRollingBack
	for i := len(a.st.Clusters) - 1; i >= 0; i-- {
		c := &a.st.Clusters[i]
		if !needsRollback(c) {
			continue
		}
		o, seen := a.obs[c.Name]
		if c.State == v1alpha1.ClusterRollingBack && seen && o.Err == "" {
			switch o.Phase {
			case v1alpha1.PhaseRolledBack, "":
				c.State, c.MemberPhase, c.FinishedAt = v1alpha1.ClusterRolledBack, o.Phase, &a.now
				if o.Mix != nil {
					c.Mix = o.Mix
				}
				if o.Phase == "" {
					c.Message = "no MeshUpgrade of this run in the member: nothing to roll back"
				}
				a.event("rollback", c.Stage, c.Name, "rolled back")
				continue
			}
		}
		if c.State == v1alpha1.ClusterRollingBack {
			if seen && o.Err != "" {
				c.Unreachable = o.Err
			}
		} else {
			c.State = v1alpha1.ClusterRollingBack
			a.event("rollback", c.Stage, c.Name, "rollback started")
		}
		a.st.Message = fmt.Sprintf("rolling back %s", c.Name)
		a.actions = append(a.actions, Action{Kind: ActionRollback, Cluster: c.Name})
		return
	}
	a.setPhase(v1alpha1.FleetRolledBack, fmt.Sprintf("%d cluster(s) rolled back in reverse order", a.count(v1alpha1.ClusterRolledBack)))
	a.event("rollback", "", "", "%s", a.st.Message)
}
