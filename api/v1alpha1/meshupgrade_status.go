package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshUpgradeStatus is the engine's whole memory of a run.
type MeshUpgradeStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase summarises the run.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// Message explains the phase in words for an operator.
	// +optional
	Message string `json:"message,omitempty"`
	// RestartToken is the value of kubectl.kubernetes.io/restartedAt this run
	// writes when moving workloads forward. Reapplying the same value is a
	// no-op for the workload controller, so a resumed run never restarts a
	// workload twice.
	// +optional
	RestartToken string `json:"restartToken,omitempty"`
	// VMVersion is the Istio release VMs (mechanism VM) are assigned with
	// the target revision, frozen with the plan so a resumed run installs
	// the same artifact on every VM.
	// +optional
	VMVersion string `json:"vmVersion,omitempty"`
	// Waves is the number of waves in the frozen plan.
	// +optional
	Waves int `json:"waves,omitempty"`
	// CurrentWave is the 1-based wave being migrated or gated.
	// +optional
	CurrentWave int `json:"currentWave,omitempty"`
	// Counts tallies Workloads by outcome.
	// +optional
	Counts Counts `json:"counts,omitempty"`
	// Workloads is the frozen plan in migration order with each outcome.
	// +optional
	Workloads []WorkloadStatus `json:"workloads,omitempty"`
	// Skipped are selected workloads a restart cannot move, with advice.
	// +optional
	Skipped []SkippedWorkload `json:"skipped,omitempty"`
	// Records point at the MeshUpgradeRecords that hold Workloads and
	// Skipped when the plan is larger than RecordInlineLimit; both lists are
	// then empty in the stored MeshUpgrade (meshroll's store reassembles them).
	// +optional
	Records []RecordRef `json:"records,omitempty"`
	// Namespaces are namespace relabels the plan makes (namespace mechanism).
	// +optional
	Namespaces []LabelMove `json:"namespaces,omitempty"`
	// Tags are revision tags the plan moves (tag mechanism).
	// +optional
	Tags []LabelMove `json:"tags,omitempty"`
	// Gateways are the blue/green gateways the gateways step flips, each
	// recorded before its Service is written, so a rollback or a halt flips
	// back every one a kill may have hidden.
	// +optional
	Gateways []GatewayFlip `json:"gateways,omitempty"`
	// Steps record the steps around the waves (install, gateways, tags,
	// prune, and migrate when skipped), in the order they ran: the intent is
	// recorded before the step writes, the outcome after; a step the run
	// leaves out is recorded Skipped, so resume and rollback see every one.
	// +optional
	Steps []StepStatus `json:"steps,omitempty"`
	// Install records the install step: which revision this run installed
	// (Owned) or found installed. It is written before the first install
	// write, so a rollback removes a revision this run installed, even half
	// way, and never one that existed before it.
	// +optional
	Install *InstallRecord `json:"install,omitempty"`
	// Gates are gate verdicts, newest last.
	// +optional
	Gates []GateResult `json:"gates,omitempty"`
	// Samples record how many pods ran each revision over time (for the
	// report's revision-mix chart); capped, oldest dropped.
	// +optional
	Samples []Sample `json:"samples,omitempty"`
	// History is a capped timeline of what the engine did.
	// +optional
	History []Event `json:"history,omitempty"`
	// Conditions are Progressing, Complete and RolledBack.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// StartedAt is when the run planned its waves.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// LastWaveDoneAt is when the last fully migrated wave finished; the pause
	// between waves counts from it.
	// +optional
	LastWaveDoneAt *metav1.Time `json:"lastWaveDoneAt,omitempty"`
	// CompletedAt is when the run reached a final phase.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// Phase of a MeshUpgrade.
type Phase string

// Phases. Succeeded, Halted and RolledBack are final.
const (
	PhasePending     Phase = "Pending"
	PhaseMigrating   Phase = "Migrating"
	PhaseGating      Phase = "Gating"
	PhaseBaking      Phase = "Baking"
	PhasePaused      Phase = "Paused"
	PhaseRollingBack Phase = "RollingBack"
	PhaseSucceeded   Phase = "Succeeded"
	PhaseHalted      Phase = "Halted"
	PhaseRolledBack  Phase = "RolledBack"
)

// Final reports whether no engine step follows this phase.
func (p Phase) Final() bool {
	return p == PhaseSucceeded || p == PhaseHalted || p == PhaseRolledBack
}

// Condition types.
const (
	// ConditionProgressing is True while the engine has work to do.
	ConditionProgressing = "Progressing"
	// ConditionComplete is True when every planned workload runs To.
	ConditionComplete = "Complete"
	// ConditionRolledBack is True after a rollback restored From.
	ConditionRolledBack = "RolledBack"
)

// Condition reasons.
const (
	ReasonPlanned        = "Planned"
	ReasonMigrating      = "Migrating"
	ReasonGatePassed     = "GatePassed"
	ReasonGateFailed     = "GateFailed"
	ReasonRolloutFailed  = "RolloutFailed"
	ReasonPaused         = "Paused"
	ReasonBaking         = "Baking"
	ReasonAllMigrated    = "AllMigrated"
	ReasonRollbackDone   = "RollbackDone"
	ReasonRollbackFailed = "RollbackFailed"
	ReasonRequested      = "RollbackRequested"
	// ReasonPausedByOperator: spec.paused is set; ReasonResumed: it was
	// lifted and the run goes on.
	ReasonPausedByOperator = "PausedByOperator"
	ReasonResumed          = "Resumed"
)

// Outcome of one workload.
type Outcome string

// Workload outcomes. "" means not started.
const (
	OutcomePending        Outcome = "Pending"
	OutcomeSucceeded      Outcome = "Succeeded"
	OutcomeFailed         Outcome = "Failed"
	OutcomeRolledBack     Outcome = "RolledBack"
	OutcomeRollbackFailed Outcome = "RollbackFailed"
	// OutcomeSkipped: the run did not move the workload and never will
	// (its owner deleted it, or it became paused, partitioned or OnDelete
	// after planning); Message says why. It is not a failure.
	OutcomeSkipped Outcome = "Skipped"
)

// Mechanism is how a workload is moved to the new revision.
type Mechanism string

// Mechanisms.
const (
	// MechanismPod sets the pod template's istio.io/rev label (per
	// workload); the assignment webhook keeps it through owners' deploys.
	MechanismPod Mechanism = "Pod"
	// MechanismNamespace relabels the workload's namespace istio.io/rev.
	MechanismNamespace Mechanism = "Namespace"
	// MechanismTag moves the revision tag the namespace (or pod) names.
	MechanismTag Mechanism = "Tag"
	// MechanismVM assigns the revision to a VM's WorkloadEntry, which its
	// meshroll-agent installs and reports healthy on; Via holds the VM's
	// previous assignment ("revision@version") that rollback restores.
	MechanismVM Mechanism = "VM"
)

// Counts tallies workloads by outcome.
type Counts struct {
	Total      int `json:"total"`
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	Pending    int `json:"pending"`
	RolledBack int `json:"rolledBack"`
	// Skipped counts workloads the run left alone on purpose (gone, or not
	// safely restartable any more); see their messages.
	// +optional
	Skipped int `json:"skipped,omitempty"`
}

// WorkloadStatus is one planned workload and what happened to it.
type WorkloadStatus struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Wave is the 1-based wave the workload belongs to.
	// +kubebuilder:validation:Minimum=1
	Wave int `json:"wave"`
	// Mechanism moves it.
	Mechanism Mechanism `json:"mechanism"`
	// Via is the label value that selected From before the move: the
	// revision, a tag, or "default" (restored on rollback for Pod).
	// +optional
	Via string `json:"via,omitempty"`
	// Pods is how many pods it ran when planned.
	// +optional
	Pods int `json:"pods,omitempty"`
	// +optional
	Outcome Outcome `json:"outcome,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// RolloutMillis is how long its forward rollout took.
	// +optional
	RolloutMillis int64 `json:"rolloutMillis,omitempty"`
}

// Ref renders "Kind namespace/name", the key used by selections and plans.
func (w WorkloadStatus) Ref() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// SkippedWorkload is a selected workload a restart cannot move.
type SkippedWorkload struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Reason    string `json:"reason"`
}

// LabelMove is a namespace label or tag the plan points from one revision to
// another; rollback points it back.
type LabelMove struct {
	// Name is the namespace or tag.
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
	// Wave is the first wave that needs the move; 0 for a tag no selected
	// workload uses, which the tags step moves after the last wave.
	Wave int `json:"wave"`
	// Done is true once applied (false again after rollback).
	// +optional
	Done bool `json:"done,omitempty"`
}

// GatewayFlip is one blue/green gateway the run moves from colour From to
// colour To; rollback points its Service back at From.
type GatewayFlip struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// From is the colour (revision) the Service selected before the run:
	// the previous selector.
	From string `json:"from"`
	To   string `json:"to"`
	// Done is true once the Service selects To (false again after it was
	// flipped back).
	// +optional
	Done bool `json:"done,omitempty"`
}

// Step names of the recorded steps around the waves.
const (
	StepInstall  = "Install"
	StepGateways = "Gateways"
	StepMigrate  = "Migrate"
	StepTags     = "Tags"
	StepPrune    = "Prune"
)

// InstallRecord is what the install step decided before it wrote.
type InstallRecord struct {
	// Revision is the revision the step installs (spec.to).
	Revision string `json:"revision"`
	// Version is the Istio release it is installed from.
	// +optional
	Version string `json:"version,omitempty"`
	// Owned is true when the revision did not exist when the step began:
	// this run installed it, so its rollback removes it (once nothing
	// references it). False for a revision that was already there.
	// +optional
	Owned bool `json:"owned,omitempty"`
	// Removed is true once a rollback removed the owned revision.
	// +optional
	Removed bool `json:"removed,omitempty"`
}

// StepState is where a recorded step stands.
type StepState string

// Step states. Running is recorded before the step's first write, so a run
// that finds it resumes (or undoes) the step instead of guessing.
const (
	StepRunning  StepState = "Running"
	StepDone     StepState = "Done"
	StepRefused  StepState = "Refused"
	StepReverted StepState = "Reverted"
	// StepSkipped marks a step the run leaves out (--skip, or a spec
	// field that is false): recorded so resume and rollback never guess.
	StepSkipped StepState = "Skipped"
)

// StepStatus is the record of one step around the waves.
type StepStatus struct {
	// Name is one of the Step* constants.
	Name  string    `json:"name"`
	State StepState `json:"state"`
	// Message says what the step did or why it stopped.
	// +optional
	Message string      `json:"message,omitempty"`
	At      metav1.Time `json:"at"`
}

// Planned reports whether the run's plan is frozen into the status (a run
// that skips the migrate step has a plan with no workloads).
func (s *MeshUpgradeStatus) Planned() bool {
	return s.StartedAt != nil || len(s.Workloads) > 0 || len(s.Records) > 0
}

// Step returns the record of the named step, or nil.
func (s *MeshUpgradeStatus) Step(name string) *StepStatus {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return &s.Steps[i]
		}
	}
	return nil
}

// GateResult is one gate's verdict after a wave.
type GateResult struct {
	Wave   int         `json:"wave"`
	Name   string      `json:"name"`
	Passed bool        `json:"passed"`
	At     metav1.Time `json:"at"`
	// AfterBake is true for the verdicts taken at the end of the wave's
	// bake, false for those taken right after its moves; the engine tells
	// a bake that is due from one that is over by it.
	// +optional
	AfterBake bool `json:"afterBake,omitempty"`
	// Evidence says what was measured against what.
	Evidence string `json:"evidence"`
}

// Sample is the revision mix at one moment.
type Sample struct {
	At metav1.Time `json:"at"`
	// Pods maps revision to pod count.
	Pods map[string]int `json:"pods"`
}

// Event is one timeline entry.
type Event struct {
	At      metav1.Time `json:"at"`
	Type    string      `json:"type"`
	Wave    int         `json:"wave,omitempty"`
	Message string      `json:"message"`
}

// Tally counts workloads by outcome; Pending counts every planned workload
// that has no final outcome yet (in flight or not started).
func Tally(ws []WorkloadStatus) Counts {
	c := Counts{Total: len(ws)}
	for _, w := range ws {
		switch w.Outcome {
		case OutcomeSucceeded:
			c.Succeeded++
		case OutcomeFailed, OutcomeRollbackFailed:
			c.Failed++
		case OutcomeRolledBack:
			c.RolledBack++
		case OutcomeSkipped:
			c.Skipped++
		default:
			c.Pending++
		}
	}
	return c
}
