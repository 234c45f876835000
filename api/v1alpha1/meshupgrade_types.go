package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshUpgrade moves the data plane from one Istio revision to another in
// gated waves. It is cluster-scoped because a revision serves the whole
// cluster; two MeshUpgrades may not cover the same workload at once.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=mu
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="From",type=string,JSONPath=`.spec.from`
// +kubebuilder:printcolumn:name="To",type=string,JSONPath=`.spec.to`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Wave",type=integer,JSONPath=`.status.currentWave`
// +kubebuilder:printcolumn:name="Moved",type=integer,JSONPath=`.status.counts.succeeded`
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.counts.total`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshUpgrade struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MeshUpgradeSpec   `json:"spec"`
	Status MeshUpgradeStatus `json:"status,omitempty"`
}

// MeshUpgradeList is a list of MeshUpgrades.
//
// +kubebuilder:object:root=true
type MeshUpgradeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshUpgrade `json:"items"`
}

// MeshUpgradeSpec is what the operator asked for. The engine freezes the wave
// plan into the status when the run starts, so editing the selection of a
// running upgrade does not reshuffle workloads already planned. The CEL
// rules below reject at admission what never makes sense, before any
// engine sees it.
//
// +kubebuilder:validation:XValidation:rule="self.from != self.to",message="from and to name the same revision: pick the revision workloads run now (from) and the one they move to (to)"
// +kubebuilder:validation:XValidation:rule="!has(self.gates) || self.gates.all(g, g.name != 'readiness')",message="gate name readiness is reserved (readiness is always checked first): rename the gate"
// +kubebuilder:validation:XValidation:rule="!has(self.gates) || self.gates.all(g, self.gates.exists_one(h, h.name == g.name))",message="gate names must be unique: rename the duplicate gate"
// +kubebuilder:validation:XValidation:rule="!has(self.gates) || !self.gates.exists(g, has(g.prometheus)) || (has(self.prometheusURL) && size(self.prometheusURL) > 0)",message="a prometheus gate needs spec.prometheusURL: set the Prometheus server the gates query"
type MeshUpgradeSpec struct {
	// From is the revision workloads run on now (e.g. 1-23-2).
	// +kubebuilder:validation:MinLength=1
	From string `json:"from"`
	// To is the installed revision they move to (e.g. 1-24-2).
	// +kubebuilder:validation:MinLength=1
	To string `json:"to"`
	// Selection picks the workloads; empty means every workload on From.
	// +optional
	Selection Selection `json:"selection,omitempty"`
	// Strategy cuts the migration into waves.
	Strategy Strategy `json:"strategy"`
	// Gates run after every wave, the last included; the next wave (or, after
	// the last, the end of the run) comes only when all pass. Readiness of
	// everything moved is always checked first.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Gates []Gate `json:"gates,omitempty"`
	// PrometheusURL is the Prometheus server Prometheus gates query.
	// +optional
	PrometheusURL string `json:"prometheusURL,omitempty"`
	// Rollback decides what happens after a failed rollout or gate: Auto
	// reassigns From to everything this run moved and restarts it, Manual
	// halts for an operator.
	// +kubebuilder:validation:Enum=Auto;Manual
	// +kubebuilder:default=Auto
	// +optional
	Rollback RollbackPolicy `json:"rollback,omitempty"`
	// RollbackRequested asks the engine to roll back every moved workload now
	// (what `meshroll rollback` sets).
	// +optional
	RollbackRequested bool `json:"rollbackRequested,omitempty"`
	// Paused stops the run before its next write: moves already started
	// finish and are recorded, nothing new starts until it is false again.
	// A requested rollback goes ahead even while paused.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// Version is the Istio release To is installed from when it is not
	// installed yet (the controller installs it from the release's charts
	// before planning, as `meshroll upgrade` does). Empty means To must
	// already be installed.
	// +kubebuilder:validation:Pattern=`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`
	// +optional
	Version string `json:"version,omitempty"`
	// FlipGateways makes the gateways step part of the run: before the first
	// wave, every meshroll blue/green gateway whose Service selects From
	// gets a ready colour of To and its Service flipped to it. Which
	// gateways flipped is recorded in the status, so a rollback or a halt
	// flips exactly those back.
	// +optional
	FlipGateways bool `json:"flipGateways,omitempty"`
	// MoveTags makes the tags step part of the run: after the last wave's
	// bake, every revision tag that pointed at From when the run was
	// planned points at To (tags the selected workloads use move with their
	// wave whatever this says).
	// +optional
	MoveTags bool `json:"moveTags,omitempty"`
	// SkipMigrate leaves the migrate step out: no workload is selected or
	// moved, and the gateways, tags and prune steps still run recorded (what
	// `meshroll upgrade --skip migrate` asks for).
	// +optional
	SkipMigrate bool `json:"skipMigrate,omitempty"`
	// Prune makes the prune step part of the run: after the tags step,
	// From is removed when no pod, pod template, namespace, tag, gateway or
	// webhook references it any more. A pruned upgrade can no longer be
	// rolled back.
	// +optional
	Prune bool `json:"prune,omitempty"`
}

// RollbackPolicy is Auto or Manual.
type RollbackPolicy string

// Rollback policies.
const (
	RollbackAuto   RollbackPolicy = "Auto"
	RollbackManual RollbackPolicy = "Manual"
)

// Selection picks workloads. A workload is selected when its namespace is
// selected and it is not excluded; only workloads whose pods run From (or
// whose injection resolves to From) are candidates.
type Selection struct {
	// Namespaces lists namespace names; empty means all.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector further restricts namespaces by label.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// ExcludeNamespaces are never touched.
	// +optional
	ExcludeNamespaces []string `json:"excludeNamespaces,omitempty"`
	// ExcludeWorkloads are "Kind namespace/name" entries never touched.
	// +optional
	ExcludeWorkloads []string `json:"excludeWorkloads,omitempty"`
}

// Strategy is how workloads are waved.
type Strategy struct {
	// Waves are wave sizes in order; the last repeats until all are placed.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	Waves []WaveSize `json:"waves"`
	// First lists canary namespaces (names or key=value namespace label
	// selectors) migrated before everything else.
	// +optional
	First []string `json:"first,omitempty"`
	// Last lists critical namespaces migrated after everything else.
	// +optional
	Last []string `json:"last,omitempty"`
	// Parallelism is how many workloads restart at once inside a wave.
	// +kubebuilder:validation:Minimum=1
	Parallelism int `json:"parallelism"`
	// PauseBetweenWaves is waited after a wave's gates pass, before the next
	// wave starts (never after the last wave).
	// +optional
	PauseBetweenWaves metav1.Duration `json:"pauseBetweenWaves,omitempty"`
	// Bake is the soak time after every wave, the last included: once a
	// wave's gates pass, its workloads run for Bake, then readiness and the
	// gates are checked again. The run succeeds (and the old revision may be
	// pruned) only after the last wave's bake. Problems that take a while to
	// show (leaks, slow error build-up, an operator noticing) surface while
	// the old revision still serves as the way back. 0 disables the soak.
	// +optional
	Bake metav1.Duration `json:"bake,omitempty"`
	// RolloutTimeout is how long one workload's rollout may go without
	// progress (a replica updated, ready or available) before it fails. A
	// deadline on progress rather than on the whole rollout scales with the
	// replica count. Unset, each workload's own deadline applies: a
	// Deployment's spec.progressDeadlineSeconds (its controller reports the
	// failure), 10m for StatefulSets and DaemonSets.
	// +optional
	RolloutTimeout metav1.Duration `json:"rolloutTimeout,omitempty"`
	// MaxFailedWorkloads is how many workloads of one wave may fail their
	// rollout before the run halts or rolls back (Rollback); each failed
	// workload is put back on From and reported, and the wave goes on.
	// Transient API errors are retried and never count; a workload its owner
	// deleted, or that cannot be restarted safely, is skipped, not failed.
	// 0 (the default) stops at the first failure.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxFailedWorkloads int `json:"maxFailedWorkloads,omitempty"`
}

// WaveSize is a count or a percentage of the movable workloads.
//
// +kubebuilder:validation:XValidation:rule="(has(self.count) && self.count > 0) != (has(self.percent) && self.percent > 0)",message="a wave is either a count or a percent above 0, not both and not neither"
type WaveSize struct {
	// +optional
	Count int `json:"count,omitempty"`
	// +kubebuilder:validation:Maximum=100
	// +optional
	Percent int `json:"percent,omitempty"`
}

// Gate is one check between waves. Exactly one of Prometheus and Probe is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.prometheus) != has(self.probe)",message="a gate has exactly one of prometheus and probe"
type Gate struct {
	// Name identifies the gate in status and reports.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// +optional
	Prometheus *PrometheusGate `json:"prometheus,omitempty"`
	// +optional
	Probe *ProbeGate `json:"probe,omitempty"`
	// OnError decides what a measurement error (Prometheus unreachable or
	// erroring, a probe that could not run) means: Retry measures again
	// with backoff and, when it keeps failing, stops the run for an
	// operator without rolling back (a rerun measures again); Fail counts
	// it as a failed check. Either way an error is never a verdict on the
	// mesh by itself.
	// +kubebuilder:validation:Enum=Retry;Fail
	// +kubebuilder:default=Retry
	// +optional
	OnError string `json:"onError,omitempty"`
	// FailureThreshold is how many failed checks in a row fail the gate
	// (Flagger's threshold, Argo's failureLimit + 1); between checks the
	// engine waits Interval. Default 1.
	// +kubebuilder:validation:Minimum=1
	// +optional
	FailureThreshold int `json:"failureThreshold,omitempty"`
	// Interval is the wait before a gate that failed a check below its
	// FailureThreshold is checked again (default 10s).
	// +optional
	Interval metav1.Duration `json:"interval,omitempty"`
}

// Gate OnError policies.
const (
	GateOnErrorRetry = "Retry"
	GateOnErrorFail  = "Fail"
)

// PrometheusGate passes when every series of an instant query compares true
// against a threshold.
type PrometheusGate struct {
	// Query is a PromQL instant query.
	Query string `json:"query"`
	// Op is one of <, <=, >, >=, ==, !=.
	// +kubebuilder:validation:Enum="<";"<=";">";">=";"==";"!="
	Op string `json:"op"`
	// Threshold is a decimal number.
	Threshold string `json:"threshold"`
	// OnNoData decides the verdict when the query returns no series.
	// +kubebuilder:validation:Enum=Pass;Fail
	// +kubebuilder:default=Pass
	// +optional
	OnNoData string `json:"onNoData,omitempty"`
}

// ProbeGate runs a Fortio load probe against a URL and fails when the share
// of non-2xx answers exceeds MaxErrorPercent.
type ProbeGate struct {
	URL string `json:"url"`
	// +optional
	QPS int `json:"qps,omitempty"`
	// +optional
	Duration metav1.Duration `json:"duration,omitempty"`
	// +optional
	Connections int `json:"connections,omitempty"`
	// MaxErrorPercent is a decimal percentage; "0" means any error fails.
	// +optional
	MaxErrorPercent string `json:"maxErrorPercent,omitempty"`
}
