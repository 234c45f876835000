package demo

import (
	"fmt"

	"github.com/meshroll/meshroll/internal/istio"
)

// ProblemKind classifies a planted problem; `meshroll check` is expected to report each one.
type ProblemKind string

// The problems a plan plants.
const (
	// ProblemBothLabels: a namespace carries istio-injection and istio.io/rev; istio-injection wins.
	ProblemBothLabels ProblemKind = "NamespaceBothLabels"
	// ProblemMissingRevision: a namespace selects a revision (or tag) that is not installed, so
	// its new pods get no sidecar.
	ProblemMissingRevision ProblemKind = "NamespaceMissingRevision"
	// ProblemPodLabelOverridden: a pod template's istio.io/rev is ignored because its namespace is labelled.
	ProblemPodLabelOverridden ProblemKind = "PodLabelOverridden"
	// ProblemStaleProxy: a pod runs a proxy image other than the one its revision injects now.
	ProblemStaleProxy ProblemKind = "StaleProxy"
	// ProblemNotRestartable: a sidecar that a rollout restart cannot replace (Job, bare Pod,
	// StatefulSet with updateStrategy OnDelete).
	ProblemNotRestartable ProblemKind = "NotRestartable"
	// ProblemCompletedPodsPinRevision: a Job's finished pods keep referring to the revision that
	// injected them until the Job is deleted.
	ProblemCompletedPodsPinRevision ProblemKind = "CompletedPodsPinRevision"
)

// Problem is one planted problem.
type Problem struct {
	Kind ProblemKind
	// Namespace is where it is.
	Namespace string
	// Workload is "Kind/name", empty for namespace-level problems.
	Workload string
	// Detail says what is wrong in words.
	Detail string
}

// findProblems derives the planted problems from the plan's labels and shapes, so that the answer
// key cannot drift from what is created.
func findProblems(p *Plan) []Problem {
	var out []Problem
	inj := p.Options.Injector()
	known := map[string]bool{}
	for _, n := range inj.names() {
		known[n.name] = true
	}
	for _, ns := range p.Namespaces {
		_, hasInj := ns.Labels[istio.LabelInjection]
		rev, hasRev := ns.Labels[istio.LabelRev]
		if hasInj && hasRev {
			out = append(out, Problem{Kind: ProblemBothLabels, Namespace: ns.Name,
				Detail: fmt.Sprintf("%s=%s and %s=%s: %s wins", istio.LabelInjection, ns.Labels[istio.LabelInjection], istio.LabelRev, rev, istio.LabelInjection)})
		}
		if hasRev && !hasInj && !known[rev] {
			out = append(out, Problem{Kind: ProblemMissingRevision, Namespace: ns.Name,
				Detail: fmt.Sprintf("%s=%s names no installed revision or tag: new pods get no sidecar", istio.LabelRev, rev)})
		}
	}
	for _, w := range p.Workloads {
		ref := string(w.Kind) + "/" + w.Name
		podRev, hasPodRev := w.PodLabels[istio.LabelRev]
		optedOut := w.PodLabels[istio.LabelSidecarInject] == "false"
		if hasPodRev && !optedOut && w.Injection.Selector != "object" {
			by := "no injection"
			if w.Injection.Revision != "" {
				by = "revision " + w.Injection.Revision + " via " + w.Injection.Via
			}
			out = append(out, Problem{Kind: ProblemPodLabelOverridden, Namespace: w.Namespace, Workload: ref,
				Detail: fmt.Sprintf("pod label %s=%s is overridden by the namespace label: %s", istio.LabelRev, podRev, by)})
		}
		if w.PreInjectedImage != "" {
			out = append(out, Problem{Kind: ProblemStaleProxy, Namespace: w.Namespace, Workload: ref,
				Detail: fmt.Sprintf("proxy image %s, revision %s injects %s", w.PreInjectedImage, podRev, p.Options.ProxyImage)})
		}
		if sidecarRevision(w) == "" {
			continue
		}
		switch {
		case w.Kind == KindJob:
			// kwok completes every Job pod, so the problem is the finished pods
			// still referring to the revision, not a restart that cannot happen.
			out = append(out, Problem{Kind: ProblemCompletedPodsPinRevision, Namespace: w.Namespace, Workload: ref,
				Detail: "completed pods keep revision " + sidecarRevision(w) + " until the Job is deleted"})
		case w.Kind == KindPod:
			out = append(out, Problem{Kind: ProblemNotRestartable, Namespace: w.Namespace, Workload: ref,
				Detail: "a bare Pod has no controller to recreate it"})
		case w.Kind == KindStatefulSet && w.OnDelete:
			out = append(out, Problem{Kind: ProblemNotRestartable, Namespace: w.Namespace, Workload: ref,
				Detail: "updateStrategy OnDelete: pods change only when deleted"})
		}
	}
	return out
}

// sidecarRevision is the revision of the sidecar w's pods carry: the injecting revision, or the
// one written into a pre-injected pod.
func sidecarRevision(w WorkloadSpec) string {
	if w.PreInjectedImage != "" {
		return w.PodLabels[istio.LabelRev]
	}
	return w.Injection.Revision
}
