package demo

import (
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/istio"
)

// Options size and target a demo mesh.
type Options struct {
	// Revision is the installed Istio revision pods are injected by, e.g. "1-23-2".
	Revision string
	// Tag is the revision tag pointing at Revision, e.g. "default".
	Tag string
	// Namespaces is how many namespaces to spread workloads over (≥ 8 plants every style and problem).
	Namespaces int
	// Workloads is how many workloads to create in all (≥ 40 plants every kind and problem).
	Workloads int
	// Replicas is the pod count of every Deployment (default 2).
	Replicas int
	// Prefix starts every namespace name (default "demo"), so that several plans can share a cluster.
	Prefix string
	// ProxyImage is the image Revision's injector writes; defaults to docker.io/istio/proxyv2:<version>.
	ProxyImage string
	// StaleProxyImage is the older image planted on the stale pod (default docker.io/istio/proxyv2:1.23.1).
	StaleProxyImage string
}

// Style is how a namespace opts its pods into injection.
type Style string

// The namespace styles a plan mixes.
const (
	StyleInjectionEnabled  Style = "istio-injection=enabled"
	StyleRevision          Style = "istio.io/rev=<revision>"
	StyleTag               Style = "istio.io/rev=<tag>"
	StylePodLevel          Style = "pod-level"
	StyleNone              Style = "none"
	StyleInjectionDisabled Style = "istio-injection=disabled"
	// StyleBothLabels carries istio-injection=enabled and istio.io/rev=<revision>: a planted problem.
	StyleBothLabels Style = "both-labels"
	// StyleMissingRevision points istio.io/rev at a revision that is not installed: a planted problem.
	StyleMissingRevision Style = "missing-revision"
)

// MissingRevision is the uninstalled revision a StyleMissingRevision namespace points at, as a
// namespace left behind by an earlier upgrade would.
const MissingRevision = "1-22-0"

// Kind is a workload kind.
type Kind string

// The workload kinds a plan mixes.
const (
	KindDeployment  Kind = "Deployment"
	KindStatefulSet Kind = "StatefulSet"
	KindDaemonSet   Kind = "DaemonSet"
	KindJob         Kind = "Job"
	KindCronJob     Kind = "CronJob"
	KindPod         Kind = "Pod"
)

// NamespaceSpec is one namespace of a plan.
type NamespaceSpec struct {
	Name   string
	Style  Style
	Labels map[string]string
}

// WorkloadSpec is one workload of a plan, with the injection its pods are expected to get.
type WorkloadSpec struct {
	Namespace string
	Name      string
	Kind      Kind
	// Replicas is the pod count of a Deployment or StatefulSet, the completions of a Job, 1 for a
	// Pod; 0 for a CronJob (suspended) and a DaemonSet (one pod per node).
	Replicas int
	// PodLabels are the labels on the pods (app=<name> plus any injection labels).
	PodLabels map[string]string
	// OnDelete gives a StatefulSet updateStrategy OnDelete.
	OnDelete bool
	// PreInjectedImage, when set, makes a bare Pod carry an istio-proxy container with this image
	// and the injector's status annotation, as if injected earlier (the stale-proxy plant).
	PreInjectedImage string
	// Service adds a headless Service selecting the pods.
	Service bool
	// Set is the plan's Prefix, stamped as LabelSet on every object.
	Set string
	// Injection is what Istio's webhooks will do to the pods, per Injector.Resolve.
	Injection Injection
}

// Ref names a workload as "Kind namespace/name".
func (w WorkloadSpec) Ref() string { return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name) }

// Plan is everything Apply will create and every problem planted on purpose.
type Plan struct {
	Options    Options
	Namespaces []NamespaceSpec
	Workloads  []WorkloadSpec
	Problems   []Problem
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Prefix == "" {
		o.Prefix = "demo"
	}
	if o.ProxyImage == "" {
		o.ProxyImage = "docker.io/istio/proxyv2:" + strings.ReplaceAll(o.Revision, "-", ".")
	}
	if o.StaleProxyImage == "" {
		o.StaleProxyImage = "docker.io/istio/proxyv2:1.23.1"
	}
	return o
}

// Injector is the set of webhooks the plan assumes: Options.Revision and Options.Tag pointing at it.
func (o Options) Injector() Injector {
	return Injector{Revisions: []string{o.Revision}, Tags: map[string]string{o.Tag: o.Revision}}
}

// Build lays out a demo mesh. It is pure and deterministic: the same Options give the same Plan.
func Build(opts Options) (*Plan, error) {
	opts = opts.withDefaults()
	switch {
	case opts.Revision == "" || opts.Tag == "":
		return nil, fmt.Errorf("failed to build plan %q: revision and tag are required", opts.Prefix)
	case opts.Namespaces < 1 || opts.Workloads < opts.Namespaces:
		return nil, fmt.Errorf("failed to build plan %q: need at least one namespace and one workload per namespace, got %d and %d",
			opts.Prefix, opts.Namespaces, opts.Workloads)
	case opts.Replicas < 1:
		return nil, fmt.Errorf("failed to build plan %q: replicas must be positive, got %d", opts.Prefix, opts.Replicas)
	}
	p := &Plan{Options: opts}
	for i := range opts.Namespaces {
		p.Namespaces = append(p.Namespaces, namespaceSpec(opts, i))
	}
	b := builder{opts: opts, plan: p, perNamespace: map[string]int{}}
	b.addSpecials()
	for k := 0; len(p.Workloads) < opts.Workloads; k++ {
		b.addGeneric(k)
	}
	inj := opts.Injector()
	nsLabels := map[string]map[string]string{}
	for _, ns := range p.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		w.Injection = inj.Resolve(nsLabels[w.Namespace], w.PodLabels)
	}
	p.Problems = findProblems(p)
	return p, nil
}

// teams gives namespaces plausible names.
func teams() []string {
	return []string{"checkout", "payments", "catalog", "search", "identity", "orders", "shipping", "inventory",
		"pricing", "reviews", "notify", "ledger", "billing", "analytics", "media", "profiles", "frontend",
		"recommend", "fraud", "support", "ads", "loyalty", "tax", "returns"}
}

// styleAt spreads styles over namespaces: the first eight cover every style once (problems
// included), the rest cycle through the common styles.
func styleAt(i int) Style {
	leading := []Style{StyleInjectionEnabled, StyleRevision, StyleTag, StylePodLevel, StyleNone,
		StyleBothLabels, StyleInjectionDisabled, StyleMissingRevision}
	if i < len(leading) {
		return leading[i]
	}
	cycle := []Style{StyleRevision, StyleInjectionEnabled, StyleTag, StylePodLevel, StyleRevision,
		StyleInjectionEnabled, StyleNone, StyleTag, StyleRevision, StyleInjectionEnabled}
	return cycle[(i-len(leading))%len(cycle)]
}

// namespaceSpec is the i-th namespace.
func namespaceSpec(o Options, i int) NamespaceSpec {
	t := teams()
	ns := NamespaceSpec{Name: fmt.Sprintf("%s-%02d-%s", o.Prefix, i, t[i%len(t)]), Style: styleAt(i)}
	ns.Labels = map[string]string{LabelPartOf: PartOf, LabelSet: o.Prefix}
	switch ns.Style {
	case StyleInjectionEnabled:
		ns.Labels[istio.LabelInjection] = "enabled"
	case StyleRevision:
		ns.Labels[istio.LabelRev] = o.Revision
	case StyleTag:
		ns.Labels[istio.LabelRev] = o.Tag
	case StyleInjectionDisabled:
		ns.Labels[istio.LabelInjection] = "disabled"
	case StyleBothLabels:
		ns.Labels[istio.LabelInjection] = "enabled"
		ns.Labels[istio.LabelRev] = o.Revision
	case StyleMissingRevision:
		ns.Labels[istio.LabelRev] = MissingRevision
	}
	return ns
}

// LabelPartOf and PartOf mark every object a plan or SeedScale creates, so they can be listed and
// removed; LabelSet carries the plan's Prefix, so that one plan's objects can be told from another's.
const (
	LabelPartOf = "app.kubernetes.io/part-of"
	PartOf      = "meshroll-demo"
	LabelSet    = "meshroll.io/demo"
)

// builder accumulates workloads.
type builder struct {
	opts         Options
	plan         *Plan
	perNamespace map[string]int // generic workloads placed so far per namespace
}

// firstOf returns the first namespace with style s.
func (b *builder) firstOf(s Style) (string, bool) {
	for _, ns := range b.plan.Namespaces {
		if ns.Style == s {
			return ns.Name, true
		}
	}
	return "", false
}

// addSpecials places the hand-picked workloads that plant problems or rare shapes, most important
// first, using at most half the workload budget.
func (b *builder) addSpecials() {
	o := b.opts
	type special struct {
		style Style
		w     WorkloadSpec
	}
	specials := []special{
		{StyleInjectionEnabled, WorkloadSpec{Name: "pinned-rev", Kind: KindDeployment, Replicas: o.Replicas,
			PodLabels: map[string]string{istio.LabelRev: o.Revision}, Service: true}},
		{StyleRevision, WorkloadSpec{Name: "legacy-proxy", Kind: KindPod, Replicas: 1, PreInjectedImage: o.StaleProxyImage,
			PodLabels: map[string]string{istio.LabelRev: o.Revision, istio.LabelSidecarInject: "false"}}},
		{StyleRevision, WorkloadSpec{Name: "ledger-db", Kind: KindStatefulSet, Replicas: 2, OnDelete: true, Service: true}},
		{StyleRevision, WorkloadSpec{Name: "schema-migrate", Kind: KindJob, Replicas: 1}},
		{StyleInjectionEnabled, WorkloadSpec{Name: "node-agent", Kind: KindDaemonSet}},
		{StyleTag, WorkloadSpec{Name: "pinned-rev", Kind: KindDeployment, Replicas: o.Replicas,
			PodLabels: map[string]string{istio.LabelRev: o.Revision}, Service: true}},
		{StyleInjectionDisabled, WorkloadSpec{Name: "pinned-rev", Kind: KindDeployment, Replicas: o.Replicas,
			PodLabels: map[string]string{istio.LabelRev: o.Revision}, Service: true}},
		{StyleNone, WorkloadSpec{Name: "log-shipper", Kind: KindDaemonSet}},
		{StyleInjectionEnabled, WorkloadSpec{Name: "opted-out", Kind: KindDeployment, Replicas: o.Replicas,
			PodLabels: map[string]string{istio.LabelSidecarInject: "false"}, Service: true}},
		{StyleInjectionEnabled, WorkloadSpec{Name: "debug-shell", Kind: KindPod, Replicas: 1}},
		{StyleTag, WorkloadSpec{Name: "nightly-report", Kind: KindCronJob}},
		{StyleBothLabels, WorkloadSpec{Name: "storefront", Kind: KindDeployment, Replicas: o.Replicas, Service: true}},
		{StyleMissingRevision, WorkloadSpec{Name: "forgotten", Kind: KindDeployment, Replicas: o.Replicas, Service: true}},
	}
	for _, s := range specials {
		if len(b.plan.Workloads) >= o.Workloads/2 {
			return
		}
		ns, ok := b.firstOf(s.style)
		if !ok {
			continue
		}
		w := s.w
		w.Namespace, w.Set = ns, o.Prefix
		w.PodLabels = withApp(w.Name, w.PodLabels)
		b.plan.Workloads = append(b.plan.Workloads, w)
	}
}

// genericPattern spreads kinds over generic workloads: per 20, 15 Deployments, 2 StatefulSets,
// one Job, one CronJob and one bare Pod.
func genericPattern() []Kind {
	D, S, J, C, P := KindDeployment, KindStatefulSet, KindJob, KindCronJob, KindPod
	return []Kind{D, D, D, S, D, D, J, D, D, D, C, D, D, P, D, D, D, S, D, D}
}

// genericBase gives generic workloads of each kind plausible names.
func genericBase(k Kind) string {
	switch k {
	case KindStatefulSet:
		return "store"
	case KindJob:
		return "batch"
	case KindCronJob:
		return "cron"
	case KindPod:
		return "probe"
	default:
		return "svc"
	}
}

// addGeneric places the k-th generic workload.
func (b *builder) addGeneric(k int) {
	nss := b.plan.Namespaces
	ns := nss[k%len(nss)]
	pattern := genericPattern()
	kind := pattern[(k+k/len(nss))%len(pattern)]
	c := b.perNamespace[ns.Name]
	b.perNamespace[ns.Name] = c + 1
	w := WorkloadSpec{Namespace: ns.Name, Name: fmt.Sprintf("%s-%03d", genericBase(kind), k), Kind: kind, Set: b.opts.Prefix}
	switch kind {
	case KindDeployment:
		w.Replicas, w.Service = b.opts.Replicas, true
	case KindStatefulSet:
		w.Replicas, w.Service = 2, true
	case KindJob, KindPod:
		w.Replicas = 1
	}
	labels := map[string]string{}
	switch ns.Style {
	case StylePodLevel:
		switch c % 5 {
		case 0, 1:
			labels[istio.LabelRev] = b.opts.Revision
		case 2:
			labels[istio.LabelRev] = b.opts.Tag
		case 3:
			labels[istio.LabelSidecarInject] = "true"
		}
	case StyleInjectionEnabled, StyleRevision, StyleTag, StyleBothLabels:
		if c%8 == 7 {
			labels[istio.LabelSidecarInject] = "false"
		}
	}
	w.PodLabels = withApp(w.Name, labels)
	b.plan.Workloads = append(b.plan.Workloads, w)
}

// withApp returns labels plus app=<name>.
func withApp(name string, labels map[string]string) map[string]string {
	out := map[string]string{"app": name}
	for k, v := range labels {
		out[k] = v
	}
	return out
}
