package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// This file decides whether a rollback may start, before it writes anything.
// A rollback points workloads, namespaces, tags and gateways back at From: if
// From is gone (pruned, removed by hand) their next pods start without a
// sidecar, and if a later upgrade moved the same things since, the rollback
// would silently undo that upgrade too. Both are refused with the command
// that clears them.

// RollbackFacts are what the refusal is decided on, read from the cluster.
type RollbackFacts struct {
	// Installed are the revisions whose istiod and injector exist.
	Installed map[string]bool
	// Others are every other MeshUpgrade.
	Others []v1alpha1.MeshUpgrade
	// MovedBy maps a workload ("Kind namespace/name") carrying another
	// upgrade's meshroll.io/upgrade label to that upgrade.
	MovedBy map[string]string
	// MovedOverMine are the other upgrades found to have moved a workload
	// over this upgrade's move (its marks sit in the workload's
	// previous-template annotation): they ran after this one whatever
	// their timestamps say.
	MovedOverMine map[string]bool
	// NamespaceRev maps a namespace to its istio.io/rev label ("" when absent).
	NamespaceRev map[string]string
	// TagRev maps a revision tag to the revision it points at.
	TagRev map[string]string
	// GatewayRev maps "namespace/name" of a gateway to the colour its
	// Service selects.
	GatewayRev map[string]string
}

// ReadRollbackFacts reads what CheckRollback needs about mu: a handful of
// LISTs whatever the number of workloads. others may be nil (no other
// MeshUpgrade is then considered, only what the cluster's labels say).
func ReadRollbackFacts(ctx context.Context, kube kubernetes.Interface, others Lister, mu *v1alpha1.MeshUpgrade) (RollbackFacts, error) {
	f := RollbackFacts{MovedBy: map[string]string{}, MovedOverMine: map[string]bool{}, NamespaceRev: map[string]string{}, TagRev: map[string]string{}, GatewayRev: map[string]string{}}
	var err error
	if f.Installed, err = installedRevisions(ctx, kube); err != nil {
		return f, err
	}
	if others != nil {
		all, err := others.List(ctx)
		if err != nil {
			return f, err
		}
		for _, o := range all {
			if o.Name != mu.Name {
				f.Others = append(f.Others, o)
			}
		}
	}
	sel := metav1.ListOptions{LabelSelector: dataplane.LabelUpgrade + "," + dataplane.LabelUpgrade + "!=" + mu.Name}
	apps := kube.AppsV1()
	mark := func(kind string, items []metav1.ObjectMeta) {
		for _, m := range items {
			by := m.Labels[dataplane.LabelUpgrade]
			f.MovedBy[kind+" "+m.Namespace+"/"+m.Name] = by
			if slices.Contains(dataplane.MovedOver(m.Annotations), mu.Name) {
				f.MovedOverMine[by] = true
			}
		}
	}
	deps, err := apps.Deployments("").List(ctx, sel)
	if err != nil {
		return f, fmt.Errorf("failed to list deployments moved by other upgrades: %w", err)
	}
	var metas []metav1.ObjectMeta
	for _, d := range deps.Items {
		metas = append(metas, d.ObjectMeta)
	}
	mark("Deployment", metas)
	sts, err := apps.StatefulSets("").List(ctx, sel)
	if err != nil {
		return f, fmt.Errorf("failed to list statefulsets moved by other upgrades: %w", err)
	}
	metas = metas[:0]
	for _, s := range sts.Items {
		metas = append(metas, s.ObjectMeta)
	}
	mark("StatefulSet", metas)
	dss, err := apps.DaemonSets("").List(ctx, sel)
	if err != nil {
		return f, fmt.Errorf("failed to list daemonsets moved by other upgrades: %w", err)
	}
	metas = metas[:0]
	for _, d := range dss.Items {
		metas = append(metas, d.ObjectMeta)
	}
	mark("DaemonSet", metas)
	for _, n := range mu.Status.Namespaces {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // gone: nothing to point back, nothing to undo
		}
		if err != nil {
			return f, fmt.Errorf("failed to get namespace %q: %w", n.Name, err)
		}
		f.NamespaceRev[n.Name] = ns.Labels[istio.LabelRev]
	}
	if len(mu.Status.Tags) > 0 {
		hooks, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: istio.LabelTag})
		if err != nil {
			return f, fmt.Errorf("failed to list tag webhooks: %w", err)
		}
		for _, h := range hooks.Items {
			f.TagRev[h.Labels[istio.LabelTag]] = h.Labels[istio.LabelRev]
		}
	}
	for _, g := range mu.Status.Gateways {
		svc, err := kube.CoreV1().Services(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return f, fmt.Errorf("failed to get service %q: %w", g.Namespace+"/"+g.Name, err)
		default:
			f.GatewayRev[g.Namespace+"/"+g.Name] = svc.Spec.Selector[istio.LabelRev]
		}
	}
	return f, nil
}

// installedRevisions are the revisions with an istiod Deployment and an
// injector webhook of their own: what a pod pointed at the revision needs to
// get a sidecar.
func installedRevisions(ctx context.Context, kube kubernetes.Interface) (map[string]bool, error) {
	revs, err := controlplane.ListRevisions(ctx, kube, istio.SystemNamespace)
	if err != nil {
		return nil, err
	}
	injects, err := InstalledRevisions(ctx, kube)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range revs {
		if injects[r.Name] {
			out[r.Name] = true
		}
	}
	return out, nil
}

// CheckRollback refuses a rollback of mu that would leave pods without a
// sidecar or undo a later upgrade; nil lets it start. It is pure.
func CheckRollback(mu *v1alpha1.MeshUpgrade, f RollbackFacts) error {
	st := &mu.Status
	from := mu.Spec.From
	var errs []error
	if !f.Installed[from] {
		how := "reinstall it"
		if s := st.Step(v1alpha1.StepPrune); s != nil && s.State != v1alpha1.StepRefused {
			how = "this upgrade pruned it; reinstall it"
		}
		errs = append(errs, fmt.Errorf("revision %s is not installed, so every pod pointed back at it would start without a sidecar (%s with `meshroll revision install --version %s --revision %s`, then rerun `meshroll rollback %s`)",
			from, how, releaseOf(from), from, mu.Name))
	}
	mine := map[string]bool{}
	for _, w := range st.Workloads {
		if w.Outcome != "" && w.Outcome != v1alpha1.OutcomeRolledBack {
			mine[w.Ref()] = true
		}
	}
	later := map[string][]string{} // later upgrade → what it moved of ours
	earlier := map[string]bool{}
	for i := range f.Others {
		o := &f.Others[i]
		// Timestamps are whole seconds: two upgrades of a few workloads
		// can start in the same one, so a move found made over ours
		// decides first.
		earlier[o.Name] = o.Status.Phase == v1alpha1.PhaseRolledBack || (!f.MovedOverMine[o.Name] && !startedAfter(o, mu))
	}
	for ref, by := range f.MovedBy {
		// A workload still labelled by an earlier upgrade is one this run
		// recorded but never patched (a kill before the write) or one its
		// own interrupted rollback already handed back: no conflict.
		if mine[ref] && !earlier[by] {
			later[by] = append(later[by], ref)
		}
	}
	for _, o := range f.Others {
		if earlier[o.Name] {
			continue
		}
		for _, w := range o.Status.Workloads {
			if mine[w.Ref()] && w.Outcome != "" && w.Outcome != v1alpha1.OutcomeRolledBack {
				later[o.Name] = append(later[o.Name], w.Ref())
			}
		}
		later[o.Name] = append(later[o.Name], sharedMoves("namespace", st.Namespaces, o.Status.Namespaces)...)
		later[o.Name] = append(later[o.Name], sharedMoves("tag", st.Tags, o.Status.Tags)...)
		for _, g := range o.Status.Gateways {
			if g.Done && slices.ContainsFunc(st.Gateways, func(m v1alpha1.GatewayFlip) bool { return m.Namespace == g.Namespace && m.Name == g.Name }) {
				later[o.Name] = append(later[o.Name], "gateway "+g.Namespace+"/"+g.Name)
			}
		}
	}
	names := make([]string, 0, len(later))
	for n, what := range later {
		if len(what) > 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		what := slices.Compact(slices.Sorted(slices.Values(later[n])))
		errs = append(errs, fmt.Errorf("MeshUpgrade %q moved %d of the things this one moved since (%s); rolling back %s now would undo it too: roll it back first with `meshroll rollback %s`, then rerun `meshroll rollback %s`",
			n, len(what), strings.Join(what[:min(3, len(what))], ", "), mu.Name, n, mu.Name))
	}
	errs = append(errs, changedSince(mu, f)...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: MeshUpgrade %q, nothing was changed: %w", ErrRollbackRefused, mu.Name, err)
	}
	return nil
}

// ErrRollbackRefused marks CheckRollback's refusals.
var ErrRollbackRefused = errors.New("rollback refused")

// changedSince refuses label moves of mu whose object now points at a
// revision that is neither the move's From nor its To: something else moved
// it after this upgrade, and pointing it back would undo that.
func changedSince(mu *v1alpha1.MeshUpgrade, f RollbackFacts) []error {
	var errs []error
	for _, n := range mu.Status.Namespaces {
		if v, ok := f.NamespaceRev[n.Name]; ok && v != n.From && v != n.To {
			errs = append(errs, fmt.Errorf("namespace %s is now labelled %s=%q, set after this upgrade moved it to %s; relabel it yourself (`kubectl label namespace %s %s=%s --overwrite`) or leave it",
				n.Name, istio.LabelRev, v, n.To, n.Name, istio.LabelRev, n.From))
		}
	}
	for _, t := range mu.Status.Tags {
		if v, ok := f.TagRev[t.Name]; ok && v != t.From && v != t.To {
			errs = append(errs, fmt.Errorf("tag %s now points at %s, set after this upgrade moved it to %s; move it yourself (`meshroll tag set %s --revision %s --overwrite`) or leave it",
				t.Name, v, t.To, t.Name, t.From))
		}
	}
	for _, g := range mu.Status.Gateways {
		if v, ok := f.GatewayRev[g.Namespace+"/"+g.Name]; ok && v != g.From && v != g.To {
			errs = append(errs, fmt.Errorf("gateway %s/%s now selects colour %s, set after this upgrade flipped it to %s; switch it yourself (`meshroll gateway switch --name %s --namespace %s --to %s`) or leave it",
				g.Namespace, g.Name, v, g.To, g.Name, g.Namespace, g.From))
		}
	}
	return errs
}

// sharedMoves names the label moves both upgrades applied.
func sharedMoves(what string, mine, theirs []v1alpha1.LabelMove) []string {
	var out []string
	for _, t := range theirs {
		if t.Done && slices.ContainsFunc(mine, func(m v1alpha1.LabelMove) bool { return m.Name == t.Name }) {
			out = append(out, what+" "+t.Name)
		}
	}
	return out
}

// startedAfter reports whether o was planned after mu (its plan's start, or
// its creation when it has none).
func startedAfter(o, mu *v1alpha1.MeshUpgrade) bool {
	at := func(m *v1alpha1.MeshUpgrade) metav1.Time {
		if m.Status.StartedAt != nil {
			return *m.Status.StartedAt
		}
		return m.CreationTimestamp
	}
	a, b := at(o), at(mu)
	return b.Before(&a) || (a.Equal(&b) && o.CreationTimestamp.After(mu.CreationTimestamp.Time))
}

// releaseOf guesses the Istio release a revision named after it stands for
// (1-23-2 → 1.23.2), for the reinstall command; "<release>" otherwise.
func releaseOf(rev string) string {
	parts := strings.Split(rev, "-")
	if len(parts) != 3 {
		return "<release>"
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return "<release>"
		}
	}
	return strings.Join(parts, ".")
}
