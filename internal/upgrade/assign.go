package upgrade

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/webhook"
)

// Assignments computes, for the revision-assignment webhook, which revision
// every workload moved by pod label is assigned to, keyed by the MeshUpgrade
// that moved it: To for workloads an active run is moving or moved. Three
// rules keep the webhook from ever doing harm:
//   - only active upgrades count: one that finished (succeeded, halted,
//     rolled back) or is rolling back assigns nothing, so it cannot stamp its
//     revision over a later upgrade's move or a rollback;
//   - entries are keyed by upgrade, and the webhook asks only the upgrade the
//     workload's meshroll.io/upgrade label names;
//   - an upgrade whose To is not installed (installed reports false) assigns
//     nothing: a template naming a revision without an injector starts pods
//     with no sidecar.
//
// Workloads moved by namespace label or tag need no assignment: their owners'
// manifests do not name a revision.
func Assignments(mus []v1alpha1.MeshUpgrade, installed map[string]bool) map[webhook.Key]string {
	out := map[webhook.Key]string{}
	for _, mu := range mus {
		if !active(&mu) || !installed[mu.Spec.To] {
			continue
		}
		for _, w := range mu.Status.Workloads {
			if w.Mechanism != v1alpha1.MechanismPod {
				continue
			}
			if w.Outcome == v1alpha1.OutcomePending || w.Outcome == v1alpha1.OutcomeSucceeded {
				out[webhook.Key{Upgrade: mu.Name, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}] = mu.Spec.To
			}
		}
	}
	return out
}

// active reports whether a MeshUpgrade is still moving workloads forward.
func active(mu *v1alpha1.MeshUpgrade) bool {
	p := mu.Status.Phase
	return !p.Final() && p != v1alpha1.PhaseRollingBack && !mu.Spec.RollbackRequested
}

// InstalledRevisions lists the revisions that can inject a sidecar now: those
// with an injector MutatingWebhookConfiguration (labelled istio.io/rev, and
// not a revision tag's). One list call, cheap enough for a refresh a second.
func InstalledRevisions(ctx context.Context, kube kubernetes.Interface) (map[string]bool, error) {
	l, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: istio.LabelRev + ",!" + istio.LabelTag})
	if err != nil {
		return nil, fmt.Errorf("failed to list injector webhooks: %w", err)
	}
	out := make(map[string]bool, len(l.Items))
	for _, w := range l.Items {
		out[w.Labels[istio.LabelRev]] = true
	}
	return out, nil
}

// Lister lists MeshUpgrades; Store implements it.
type Lister interface {
	List(ctx context.Context) ([]v1alpha1.MeshUpgrade, error)
}

// LoadAssignments reads the MeshUpgrades and the installed revisions and
// computes the webhook's table.
func LoadAssignments(ctx context.Context, mus Lister, kube kubernetes.Interface) (map[webhook.Key]string, error) {
	list, err := mus.List(ctx)
	if err != nil {
		return nil, err
	}
	installed, err := InstalledRevisions(ctx, kube)
	if err != nil {
		return nil, err
	}
	return Assignments(list, installed), nil
}
