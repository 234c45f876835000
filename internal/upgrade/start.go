package upgrade

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/plan"
)

// StartOptions carry what Start needs besides the MeshUpgrade itself.
type StartOptions struct {
	Store   Store
	Applier *controlplane.Applier
	// Snapshot is the cluster read just before; NamespaceLabels every
	// namespace's labels.
	Snapshot        *inventory.Snapshot
	NamespaceLabels map[string]map[string]string
	// ValidateGate checks one gate against its backend (a Prometheus query
	// that does not parse is refused before anything changes); nil skips.
	ValidateGate func(ctx context.Context, g v1alpha1.Gate) error
	Now          time.Time
	// VMs are the cluster's VM proxies (inventory.ReadVMs); those of From
	// join the waves (vm_plan.go). VMStaleAfter is how old an agent's
	// heartbeat may be (default 2m): older refuses the plan.
	VMs          []inventory.VMProxy
	VMStaleAfter time.Duration
}

// Start validates mu and records it with its frozen plan, or returns the
// existing MeshUpgrade of the same name when its spec is the same (the
// command was rerun to resume). Every refusal happens before any write.
func Start(ctx context.Context, mu *v1alpha1.MeshUpgrade, o StartOptions) (*v1alpha1.MeshUpgrade, error) {
	existing, err := o.Store.Get(ctx, mu.Name)
	switch {
	case err == nil:
		if err := resumable(existing, mu); err != nil {
			return nil, err
		}
		if existing.Status.Planned() {
			return existing, nil
		}
		// Created (and maybe installed, see Installer), but killed before
		// its plan was recorded: plan it now, keeping what it recorded.
		mu = existing
	case apierrors.IsNotFound(err):
	default:
		return nil, fmt.Errorf("failed to read MeshUpgrade %q: %w", mu.Name, err)
	}
	if err := validateSpec(mu.Spec); err != nil {
		return nil, err
	}
	others, err := o.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	st, err := Freeze(o.Snapshot, o.NamespaceLabels, mu, others, o.Now)
	if err != nil {
		return nil, err
	}
	keepRecorded(&st, mu, metav1.NewTime(o.Now))
	if err := planVMs(&st, mu, o, others); err != nil {
		return nil, err
	}
	if mu.Spec.Strategy.Parallelism == 0 {
		// Unset: scaled to the plan, and recorded, so a rerun resumes with it.
		mu.Spec.Strategy.Parallelism = plan.DefaultParallelism(len(st.Workloads))
	}
	probe := mu.DeepCopy()
	probe.Status = st
	if err := CheckSize(probe); err != nil { // before any write, not after the first status write fails
		return nil, err
	}
	if o.ValidateGate != nil {
		var errs []error
		for _, g := range mu.Spec.Gates {
			errs = append(errs, o.ValidateGate(ctx, g))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	if o.Store.DryRun {
		mu.Status = st
		return mu, nil
	}
	if mu.UID == "" {
		if err := o.Store.EnsureCRD(ctx, o.Applier); err != nil {
			return nil, err
		}
		if mu, err = o.Store.Create(ctx, mu); err != nil {
			return nil, err
		}
	}
	mu.Status = st
	return o.Store.UpdateStatus(ctx, mu)
}

// keepRecorded carries into the frozen status st what the run recorded
// before it was planned (the install step), and records as Skipped every
// step the spec leaves out, so resume and rollback see each step, run or
// not.
func keepRecorded(st *v1alpha1.MeshUpgradeStatus, mu *v1alpha1.MeshUpgrade, now metav1.Time) {
	st.Install, st.Steps, st.History = mu.Status.Install, mu.Status.Steps, mu.Status.History
	skip := func(name string, left bool, why string) {
		if left && st.Step(name) == nil {
			recordStep(st, name, v1alpha1.StepSkipped, why, now)
		}
	}
	s := mu.Spec
	skip(v1alpha1.StepInstall, true, fmt.Sprintf("no install step ran: revision %s was installed before this upgrade (or --skip install)", s.To))
	skip(v1alpha1.StepGateways, !s.FlipGateways, "not part of this run (spec.flipGateways is false, or --skip gateways)")
	skip(v1alpha1.StepMigrate, s.SkipMigrate, "not part of this run (spec.skipMigrate, or --skip migrate): no workload is moved")
	skip(v1alpha1.StepTags, !s.MoveTags, "not part of this run (spec.moveTags is false, or --skip tags); tags the moved workloads use still move with their wave")
	skip(v1alpha1.StepPrune, !s.Prune, fmt.Sprintf("not part of this run (spec.prune is false, or --skip prune): revision %s stays installed", s.From))
}

// resumable refuses to resume existing for mu unless their specs are the
// same and the run is not finished. An unset
// parallelism in mu takes what the first run chose.
func resumable(existing, mu *v1alpha1.MeshUpgrade) error {
	if mu.Spec.Strategy.Parallelism == 0 {
		mu.Spec.Strategy.Parallelism = existing.Spec.Strategy.Parallelism
	}
	if !reflect.DeepEqual(withDefaults(existing.Spec), withDefaults(mu.Spec)) {
		return fmt.Errorf("MeshUpgrade %q already exists with a different spec (phase %s); pick another --name, or roll it back with `meshroll rollback %s`", mu.Name, existing.Status.Phase, mu.Name)
	}
	if existing.Status.Phase.Final() {
		return fmt.Errorf("MeshUpgrade %q already finished (%s: %s); pick another --name to start a new run", mu.Name, existing.Status.Phase, existing.Status.Message)
	}
	return nil
}

// Create records mu before its plan, so the install step (Installer) has a
// MeshUpgrade to record its intent in before its first write; Start then
// freezes the plan into it. An existing MeshUpgrade of the same name and
// spec is returned to resume. Refusals come before any write.
func Create(ctx context.Context, mu *v1alpha1.MeshUpgrade, o StartOptions) (*v1alpha1.MeshUpgrade, error) {
	existing, err := o.Store.Get(ctx, mu.Name)
	switch {
	case err == nil:
		if err := resumable(existing, mu); err != nil {
			return nil, err
		}
		return existing, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to read MeshUpgrade %q: %w", mu.Name, err)
	}
	if err := validateSpec(mu.Spec); err != nil {
		return nil, err
	}
	if o.Store.DryRun {
		return mu, nil
	}
	if err := o.Store.EnsureCRD(ctx, o.Applier); err != nil {
		return nil, err
	}
	return o.Store.Create(ctx, mu)
}

// validateSpec rejects specs whose meaning would be a guess.
func validateSpec(s v1alpha1.MeshUpgradeSpec) error {
	var errs []error
	if s.From == "" || s.To == "" {
		errs = append(errs, errors.New("both from and to revisions are required"))
	}
	if s.Strategy.Parallelism < 0 {
		errs = append(errs, fmt.Errorf("parallelism %d is negative (0 picks one from the number of workloads)", s.Strategy.Parallelism))
	}
	if s.Rollback != "" && s.Rollback != v1alpha1.RollbackAuto && s.Rollback != v1alpha1.RollbackManual {
		errs = append(errs, fmt.Errorf("rollback policy %q is neither Auto nor Manual", s.Rollback))
	}
	seen := map[string]bool{readinessGate: true}
	for _, g := range s.Gates {
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("gate name %q is used twice (or is reserved)", g.Name))
		}
		seen[g.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid upgrade: %w", err)
	}
	return nil
}

// withDefaults fills in what the CRD's defaults fill in on the API server
// (kubebuilder:default markers), so a rerun with the same flags compares
// equal to the stored spec it created.
func withDefaults(s v1alpha1.MeshUpgradeSpec) v1alpha1.MeshUpgradeSpec {
	if s.Rollback == "" {
		s.Rollback = v1alpha1.RollbackAuto
	}
	if sel := s.Selection.NamespaceSelector; sel != nil {
		// A parsed selector has empty, non-nil lists that a JSON round
		// trip through the API server drops: compare what they mean.
		n := sel.DeepCopy()
		if len(n.MatchLabels) == 0 {
			n.MatchLabels = nil
		}
		if len(n.MatchExpressions) == 0 {
			n.MatchExpressions = nil
		}
		for i := range n.MatchExpressions {
			if len(n.MatchExpressions[i].Values) == 0 {
				n.MatchExpressions[i].Values = nil
			}
		}
		s.Selection.NamespaceSelector = n
	}
	s.Gates = append([]v1alpha1.Gate(nil), s.Gates...)
	for i := range s.Gates {
		g := &s.Gates[i]
		if g.OnError == "" {
			g.OnError = "Retry"
		}
		if g.Prometheus != nil && g.Prometheus.OnNoData == "" {
			p := *g.Prometheus
			p.OnNoData = "Pass"
			g.Prometheus = &p
		}
	}
	return s
}

// NamespaceLabels reads every namespace's labels for selectors and wave
// ordering (the inventory keeps only injection labels).
func NamespaceLabels(ctx context.Context, kube kubernetes.Interface) (map[string]map[string]string, error) {
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list namespaces: %w", err)
	}
	out := make(map[string]map[string]string, len(list.Items))
	for _, ns := range list.Items {
		out[ns.Name] = ns.Labels
	}
	return out, nil
}
