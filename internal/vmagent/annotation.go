package vmagent

// Annotations on a WorkloadEntry. meshroll writes the desired ones; the agent
// writes the reported ones. Both sides import these names from here.
const (
	// AnnotationDesiredRevision is the revision meshroll assigns the VM.
	AnnotationDesiredRevision = "meshroll.io/vm-desired-revision"
	// AnnotationDesiredVersion is the Istio version of the assigned revision.
	AnnotationDesiredVersion = "meshroll.io/vm-desired-version"

	// AnnotationPhase is the agent's phase (see Phase).
	AnnotationPhase = "meshroll.io/vm-phase"
	// AnnotationRevision is the revision the sidecar runs now.
	AnnotationRevision = "meshroll.io/vm-revision"
	// AnnotationVersion is the version the sidecar runs now.
	AnnotationVersion = "meshroll.io/vm-version"
	// AnnotationTarget is the revision@version the agent works on or last
	// gave up on; with AnnotationPhase it says what a failure is about.
	AnnotationTarget = "meshroll.io/vm-target"
	// AnnotationError is why the last attempt failed ("" when it did not).
	AnnotationError = "meshroll.io/vm-error"
	// AnnotationHeartbeat is when the agent last reported (RFC 3339); a stale
	// heartbeat means an unreachable agent.
	AnnotationHeartbeat = "meshroll.io/vm-heartbeat"
	// AnnotationTransition is when the phase last changed (RFC 3339).
	AnnotationTransition = "meshroll.io/vm-transition"
	// AnnotationOverride is set while a local override file decides the
	// version; its value is the override's reason.
	AnnotationOverride = "meshroll.io/vm-override"
	// AnnotationAgent marks a WorkloadEntry managed by meshroll-agent; its
	// value is the agent's own version.
	AnnotationAgent = "meshroll.io/vm-agent"
)

// Phase is what the agent is doing or how its last attempt ended.
type Phase string

// Phases. Ready means the sidecar runs the assignment and is healthy; Failed
// and RolledBack are final for an assignment (the previous version still
// serves) until the assignment changes; Retrying is a transient failure
// retried with backoff.
const (
	PhaseReady      Phase = "Ready"
	PhaseUpgrading  Phase = "Upgrading"
	PhaseRetrying   Phase = "Retrying"
	PhaseFailed     Phase = "Failed"
	PhaseRolledBack Phase = "RolledBack"
)
