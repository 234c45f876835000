package demo

// Expectation is the answer key of a plan: what `meshroll status` and `meshroll check` must report
// once Apply and WaitReady have run against a cluster with the plan's revision and tag installed.
type Expectation struct {
	Namespaces []NamespaceExpectation
	// Kinds counts workloads per kind.
	Kinds     map[Kind]int
	Workloads []WorkloadExpectation
	Problems  []Problem
}

// NamespaceExpectation is what injects a plain pod (one without injection labels) in a namespace.
type NamespaceExpectation struct {
	Name  string
	Style Style
	// Revision injects plain pods there; "" for none.
	Revision string
	// Via is the revision or tag name that selects Revision.
	Via string
}

// WorkloadExpectation is what a workload's pods must look like.
type WorkloadExpectation struct {
	Namespace string
	Name      string
	Kind      Kind
	// Pods is how many pods it has; per node when PerNode (a DaemonSet).
	Pods    int
	PerNode bool
	// Revision is the revision of its pods' sidecar, "" when they have none.
	Revision string
	// ProxyImage is the istio-proxy image of its pods, "" when they have none.
	ProxyImage string
	// Stale is true when ProxyImage differs from what Revision injects now.
	Stale bool
	// Restartable is true when a rollout restart replaces its pods (and so can move them to another revision).
	Restartable bool
	// Completes is true when its pods end Succeeded rather than Running: Jobs, because kwok's
	// default pod-complete stage finishes every pod owned by a Job.
	Completes bool
}

// Expect derives the answer key from the plan.
func (p *Plan) Expect() Expectation {
	e := Expectation{Kinds: map[Kind]int{}, Problems: append([]Problem(nil), p.Problems...)}
	inj := p.Options.Injector()
	for _, ns := range p.Namespaces {
		r := inj.Resolve(ns.Labels, nil)
		e.Namespaces = append(e.Namespaces, NamespaceExpectation{Name: ns.Name, Style: ns.Style, Revision: r.Revision, Via: r.Via})
	}
	for _, w := range p.Workloads {
		e.Kinds[w.Kind]++
		x := WorkloadExpectation{Namespace: w.Namespace, Name: w.Name, Kind: w.Kind, Pods: w.Replicas,
			Revision: sidecarRevision(w), Completes: w.Kind == KindJob}
		switch w.Kind {
		case KindDeployment, KindDaemonSet:
			// A CronJob is not restarted: its next run is injected by whatever
			// its labels select then.
			x.Restartable = true
		case KindStatefulSet:
			x.Restartable = !w.OnDelete
		}
		if w.Kind == KindDaemonSet {
			x.Pods, x.PerNode = 1, true
		}
		if x.Revision != "" {
			x.ProxyImage = p.Options.ProxyImage
		}
		if w.PreInjectedImage != "" {
			x.ProxyImage = w.PreInjectedImage
			x.Stale = w.PreInjectedImage != p.Options.ProxyImage
		}
		e.Workloads = append(e.Workloads, x)
	}
	return e
}

// PodsByRevision counts the pods expected per sidecar revision ("" for pods without a sidecar),
// given how many nodes run DaemonSet pods. Completed Job pods are counted: they still exist.
func (e Expectation) PodsByRevision(nodes int) map[string]int {
	out := map[string]int{}
	for _, w := range e.Workloads {
		out[w.Revision] += w.podCount(nodes)
	}
	return out
}

// Pods counts every pod expected, given how many nodes run DaemonSet pods.
func (e Expectation) Pods(nodes int) int {
	n := 0
	for _, w := range e.Workloads {
		n += w.podCount(nodes)
	}
	return n
}

// podCount is w's pod count on a cluster with the given number of nodes.
func (w WorkloadExpectation) podCount(nodes int) int {
	if w.PerNode {
		return w.Pods * nodes
	}
	return w.Pods
}

// ProblemsOf returns the planted problems of one kind.
func (e Expectation) ProblemsOf(k ProblemKind) []Problem {
	var out []Problem
	for _, p := range e.Problems {
		if p.Kind == k {
			out = append(out, p)
		}
	}
	return out
}
