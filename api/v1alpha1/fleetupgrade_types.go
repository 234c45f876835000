package v1alpha1

import (
	_ "embed"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FleetUpgrade upgrades Istio on many member clusters in ordered stages. It
// lives in the hub; its members are reached through Secrets in the hub (or a
// fleet file for the CLI), never through credentials in the resource. Each
// member's own work is a MeshUpgrade in that member, named after the
// FleetUpgrade, so the member's record (intent before write, rollback) is the
// single-cluster engine's.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=fu
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.currentStage`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FleetUpgrade struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FleetUpgradeSpec   `json:"spec"`
	Status FleetUpgradeStatus `json:"status,omitempty"`
}

// FleetUpgradeList is a list of FleetUpgrades.
//
// +kubebuilder:object:root=true
type FleetUpgradeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FleetUpgrade `json:"items"`
}

// FleetUpgradeResource is the plural resource name of FleetUpgrade.
const FleetUpgradeResource = "fleetupgrades"

// FleetUpgradeGVR addresses FleetUpgrades for dynamic clients.
var FleetUpgradeGVR = GroupVersion.WithResource(FleetUpgradeResource)

// FleetUpgradeCRD is the FleetUpgrade CustomResourceDefinition (make generate).
//
//go:embed crd/meshroll.io_fleetupgrades.yaml
var FleetUpgradeCRD []byte

// FleetUpgradeSpec is the rollout the operator asked for.
type FleetUpgradeSpec struct {
	// Version is the Istio release every member upgrades to (e.g. 1.24.2).
	// +kubebuilder:validation:MinLength=1
	Version string `json:"version"`
	// Stages run in order; a stage starts only when the one before it
	// succeeded and soaked. Each cluster belongs to exactly one stage.
	// +kubebuilder:validation:MinItems=1
	Stages []FleetStage `json:"stages"`
	// Canary selects the canary clusters: inside a stage they go first, one
	// at a time, each soaked before the rest of the stage starts; and no
	// stage without canaries may run before a stage holding them.
	// +optional
	Canary *metav1.LabelSelector `json:"canary,omitempty"`
	// MaxConcurrent is how many clusters of a stage upgrade at once (default 1).
	// +optional
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// ClusterSoak is how long each cluster's gates must hold after its
	// MeshUpgrade succeeded before it counts as done.
	// +optional
	ClusterSoak metav1.Duration `json:"clusterSoak,omitempty"`
	// ProgressDeadline fails a cluster whose upgrade has not finished this
	// long after it started (default 30m).
	// +optional
	ProgressDeadline metav1.Duration `json:"progressDeadline,omitempty"`
	// MaxFailedClusters is the failure budget: more failed clusters than
	// this halt the rollout (default 0: the first failure halts promotion).
	// +optional
	MaxFailedClusters int `json:"maxFailedClusters,omitempty"`
	// Unreachable is what a member that cannot be reached mid-upgrade does
	// to the rollout: Wait (until the progress deadline) or Halt.
	// +kubebuilder:validation:Enum=Wait;Halt
	// +optional
	Unreachable UnreachablePolicy `json:"unreachable,omitempty"`
	// Member is how each member's MeshUpgrade runs.
	// +optional
	Member MemberStrategy `json:"member,omitempty"`
	// Approved lists the stages approved to start (set by `meshroll fleet
	// approve`, or from Git).
	// +optional
	Approved []string `json:"approved,omitempty"`
	// RollbackRequested rolls back every cluster the run upgraded, in
	// reverse order (what `meshroll fleet rollback` sets).
	// +optional
	RollbackRequested bool `json:"rollbackRequested,omitempty"`
	// Paused holds promotion (set from Git, or with kubectl patch): no stage
	// and no cluster starts while it is true; clusters already in flight
	// finish and soak, and a rollback request still runs.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// FleetStage is one step of the rollout: the clusters its selector matches.
type FleetStage struct {
	// Name identifies the stage (testing, dev, preprod, prod).
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Selector matches member cluster labels.
	Selector metav1.LabelSelector `json:"selector"`
	// Soak is how long every cluster of the stage must keep passing its
	// gates after the last of them finished, before the next stage starts.
	// +optional
	Soak metav1.Duration `json:"soak,omitempty"`
	// RequireApproval holds the stage until its name is in spec.approved.
	// +optional
	RequireApproval bool `json:"requireApproval,omitempty"`
}

// UnreachablePolicy says what an unreachable member does to the rollout.
type UnreachablePolicy string

// Unreachable policies.
const (
	UnreachableWait UnreachablePolicy = "Wait"
	UnreachableHalt UnreachablePolicy = "Halt"
)

// MemberStrategy shapes each member's MeshUpgrade (the flags of `meshroll
// upgrade`).
type MemberStrategy struct {
	// Waves are the wave sizes ("1,50%,100%"); default "1,10%,50%,100%".
	// +optional
	Waves string `json:"waves,omitempty"`
	// Parallelism is how many workloads restart at once (default 20).
	// +optional
	Parallelism int `json:"parallelism,omitempty"`
	// Bake is the member's soak after every wave.
	// +optional
	Bake metav1.Duration `json:"bake,omitempty"`
	// RolloutTimeout fails a workload whose rollout stops progressing.
	// +optional
	RolloutTimeout metav1.Duration `json:"rolloutTimeout,omitempty"`
	// Rollback is the member's policy after a failure: Auto or Manual.
	// +kubebuilder:validation:Enum=Auto;Manual
	// +optional
	Rollback RollbackPolicy `json:"rollback,omitempty"`
	// Gates are `meshroll upgrade --gate` expressions run against the
	// member's Prometheus (the URL from its Secret's
	// meshroll.io/prometheus annotation).
	// +optional
	Gates []string `json:"gates,omitempty"`
}

// FleetUpgradeStatus is the recorded state of the rollout; a restarted
// engine continues from it.
type FleetUpgradeStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Phase FleetPhase `json:"phase,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// CurrentStage is the stage in progress.
	// +optional
	CurrentStage string `json:"currentStage,omitempty"`
	// Stages mirror spec.stages with what happened to each.
	// +optional
	Stages []FleetStageStatus `json:"stages,omitempty"`
	// Clusters is the frozen plan, in rollout order.
	// +optional
	Clusters []FleetClusterStatus `json:"clusters,omitempty"`
	// History lists what happened, oldest first (bounded).
	// +optional
	History []FleetEvent `json:"history,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// FleetPhase summarises a FleetUpgrade.
type FleetPhase string

// Fleet phases. Succeeded, Halted and RolledBack are final.
const (
	FleetPending          FleetPhase = "Pending"
	FleetProgressing      FleetPhase = "Progressing"
	FleetWaitingApproval  FleetPhase = "WaitingApproval"
	FleetSoaking          FleetPhase = "Soaking"
	FleetWaitingForMember FleetPhase = "WaitingForMember"
	FleetSucceeded        FleetPhase = "Succeeded"
	FleetHalted           FleetPhase = "Halted"
	FleetRollingBack      FleetPhase = "RollingBack"
	FleetRolledBack       FleetPhase = "RolledBack"
)

// Final reports whether the engine has nothing more to do.
func (p FleetPhase) Final() bool {
	return p == FleetSucceeded || p == FleetHalted || p == FleetRolledBack
}

// FleetStageStatus is what happened to one stage.
type FleetStageStatus struct {
	Name  string     `json:"name"`
	State StageState `json:"state"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// SoakUntil is when the stage's soak ends.
	// +optional
	SoakUntil *metav1.Time `json:"soakUntil,omitempty"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// +optional
	ApprovedAt *metav1.Time `json:"approvedAt,omitempty"`
}

// StageState is a stage's progress.
type StageState string

// Stage states.
const (
	StagePending         StageState = "Pending"
	StageAwaitingApprove StageState = "AwaitingApproval"
	StageProgressing     StageState = "Progressing"
	StageSoaking         StageState = "Soaking"
	StageSucceeded       StageState = "Succeeded"
	StageHalted          StageState = "Halted"
)

// FleetClusterStatus is one member in the frozen plan.
type FleetClusterStatus struct {
	Name string `json:"name"`
	// Stage is the stage the cluster belongs to.
	Stage string `json:"stage"`
	// Canary clusters go first in their stage, alone.
	// +optional
	Canary bool         `json:"canary,omitempty"`
	State  ClusterState `json:"state"`
	// MeshUpgrade is the member's MeshUpgrade (named after the FleetUpgrade).
	// +optional
	MeshUpgrade string `json:"meshUpgrade,omitempty"`
	// MemberPhase is the member MeshUpgrade's phase when last seen.
	// +optional
	MemberPhase Phase `json:"memberPhase,omitempty"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// UpgradedAt is when its MeshUpgrade succeeded (its soak starts then).
	// +optional
	UpgradedAt *metav1.Time `json:"upgradedAt,omitempty"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Unreachable is set while the member cannot be reached.
	// +optional
	Unreachable string `json:"unreachable,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Mix counts the member's pods per proxy version when last seen.
	// +optional
	Mix map[string]int `json:"mix,omitempty"`
	// Gates is the latest evidence of each gate of the cluster.
	// +optional
	Gates []FleetGate `json:"gates,omitempty"`
}

// ClusterState is one member's progress.
type ClusterState string

// Cluster states.
const (
	ClusterPending     ClusterState = "Pending"
	ClusterUpgrading   ClusterState = "Upgrading"
	ClusterSoaking     ClusterState = "Soaking"
	ClusterSucceeded   ClusterState = "Succeeded"
	ClusterFailed      ClusterState = "Failed"
	ClusterRollingBack ClusterState = "RollingBack"
	ClusterRolledBack  ClusterState = "RolledBack"
)

// FleetGate is one gate's latest verdict on one cluster.
type FleetGate struct {
	Name     string      `json:"name"`
	Passed   bool        `json:"passed"`
	Evidence string      `json:"evidence,omitempty"`
	At       metav1.Time `json:"at"`
}

// FleetEvent is one line of the rollout's history.
type FleetEvent struct {
	At metav1.Time `json:"at"`
	// Type: stage, cluster, gate, approval, halt, rollback.
	Type string `json:"type"`
	// +optional
	Stage string `json:"stage,omitempty"`
	// +optional
	Cluster string `json:"cluster,omitempty"`
	Message string `json:"message"`
}

// Fleet condition types and reasons.
const (
	FleetConditionProgressing = "Progressing"
	FleetConditionHalted      = "Halted"
	FleetConditionReachable   = "MembersReachable"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonMemberUnreachable   = "MemberUnreachable"
	ReasonClusterFailed       = "ClusterFailed"
	ReasonAwaitingApproval    = "AwaitingApproval"
	ReasonDeadlineExceeded    = "ProgressDeadlineExceeded"
	// ReasonPaused (shared with MeshUpgrade): spec.paused holds promotion.
	// ReasonMembersUnavailable: the hub's member Secrets cannot be read
	// (none, or one without a kubeconfig); nothing was touched.
	ReasonMembersUnavailable = "MembersUnavailable"
)
