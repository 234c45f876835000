package check

import (
	"cmp"
	"slices"
)

// Severity says how much a finding should block a pipeline; ExitCode maps it
// to a process exit status.
type Severity string

// The severities, in increasing order of weight.
const (
	// Info is advice that never fails a pipeline.
	Info Severity = "info"
	// Warning is a likely problem; it fails only pipelines that treat warnings as errors.
	Warning Severity = "warning"
	// Error is a manifest that will be rejected or break the mesh.
	Error Severity = "error"
)

// rank orders severities so callers can compare them.
func (s Severity) rank() int {
	switch s {
	case Error:
		return 2
	case Warning:
		return 1
	default:
		return 0
	}
}

// Finding is one problem found by one check in one object. It carries a fix
// hint so that a CI log is actionable without reading meshroll's source.
type Finding struct {
	// Check is the name of the check, e.g. "duplicate-env".
	Check string `json:"check"`
	// Code is the check's stable code, e.g. "MV010", for suppression lists.
	Code string `json:"code"`
	// Severity of this finding.
	Severity Severity `json:"severity"`
	// Object names the object: "Kind namespace/name", or "Kind name" when
	// cluster-scoped, or a file position for documents that did not parse.
	Object string `json:"object"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Fix says how to make it right.
	Fix string `json:"fix"`
}

// Checker is one validator. Implementations are stateless values: Run may be
// called concurrently on different inputs.
type Checker interface {
	// Name is a short kebab-case name, e.g. "reserved-port".
	Name() string
	// Code is the stable code, e.g. "MV006".
	Code() string
	// Run returns the findings for in, in any order.
	Run(in *Input) []Finding
}

// All returns every check in code order, so output and docs are stable.
func All() []Checker {
	return []Checker{
		yamlValid{},
		schemaValid{},
		deprecatedAPI{},
		duplicateResource{},
		missingNamespace{},
		reservedPort{},
		portProtocol{},
		containerResources{},
		probeShell{},
		duplicateEnv{},
		imageTag{},
		webhookTimeout{},
		webhookService{},
		revisionLabel{},
		injectionLabels{},
		pdbBlocksEviction{},
		hpaReplicas{},
		rbacWildcard{},
		singleReplicaPDB{},
		workloadSelector{},
		serviceSelector{},
		crdVersions{},
		privileged{},
		runAsRoot{},
		istiodReadiness{},
		emptyName{},
		invalidLabels{},
		cronSchedule{},
	}
}

// Run runs checks over in and returns their findings in a deterministic
// order: by check (in the order given), then object, then message.
func Run(in *Input, checks []Checker) []Finding {
	var out []Finding
	for _, c := range checks {
		fs := c.Run(in)
		slices.SortStableFunc(fs, func(a, b Finding) int {
			return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Message, b.Message))
		})
		out = append(out, fs...)
	}
	return out
}

// ExitCode maps findings to a process exit status for CI: 0 when there are
// none or only info, 1 when the worst is a warning, 2 when any is an error.
func ExitCode(findings []Finding) int {
	worst := 0
	for _, f := range findings {
		worst = max(worst, f.Severity.rank())
	}
	return worst
}

// finding builds a Finding for check c about obj; checks call it so every
// finding carries the check's name and code.
func finding(c Checker, sev Severity, object, msg, fix string) Finding {
	return Finding{Check: c.Name(), Code: c.Code(), Severity: sev, Object: object, Message: msg, Fix: fix}
}
