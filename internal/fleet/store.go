package fleet

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
)

// Store reads and writes FleetUpgrades in the hub.
type Store struct {
	Dynamic dynamic.Interface
	// DryRun sends writes as server-side dry runs.
	DryRun bool
}

func (s Store) res() dynamic.ResourceInterface { return s.Dynamic.Resource(v1alpha1.FleetUpgradeGVR) }

func (s Store) writeOpts() []string {
	if s.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// EnsureCRD applies the FleetUpgrade CRD and waits until it is established.
func (s Store) EnsureCRD(ctx context.Context, a *controlplane.Applier) error {
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal(v1alpha1.FleetUpgradeCRD, &obj.Object); err != nil {
		return fmt.Errorf("failed to read the embedded FleetUpgrade CRD: %w", err)
	}
	if _, err := a.Apply(ctx, []*unstructured.Unstructured{&obj}); err != nil {
		return fmt.Errorf("failed to apply the FleetUpgrade CRD: %w", err)
	}
	if s.DryRun {
		return nil
	}
	return a.WaitEstablished(ctx, []string{obj.GetName()}, time.Minute)
}

// Get reads one FleetUpgrade.
func (s Store) Get(ctx context.Context, name string) (*v1alpha1.FleetUpgrade, error) {
	u, err := s.res().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return decode(u)
}

// Create stores a new FleetUpgrade.
func (s Store) Create(ctx context.Context, fu *v1alpha1.FleetUpgrade) (*v1alpha1.FleetUpgrade, error) {
	u, err := encode(fu)
	if err != nil {
		return nil, err
	}
	out, err := s.res().Create(ctx, u, metav1.CreateOptions{FieldManager: "meshroll", DryRun: s.writeOpts()})
	if err != nil {
		return nil, fmt.Errorf("failed to create FleetUpgrade %q: %w", fu.Name, err)
	}
	return decode(out)
}

// UpdateStatus writes fu's status against fu's resourceVersion: a conflict
// (the spec changed: an approval, a rollback request) is returned, and the
// engine decides again from the fresh object.
func (s Store) UpdateStatus(ctx context.Context, fu *v1alpha1.FleetUpgrade) (*v1alpha1.FleetUpgrade, error) {
	if s.DryRun {
		return fu, nil
	}
	u, err := encode(fu)
	if err != nil {
		return nil, err
	}
	out, err := s.res().UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "meshroll"})
	if err != nil {
		return nil, fmt.Errorf("failed to update status of FleetUpgrade %q: %w", fu.Name, err)
	}
	return decode(out)
}

// Patch merges a JSON patch into a FleetUpgrade (approvals, rollback).
func (s Store) Patch(ctx context.Context, name string, patch []byte) (*v1alpha1.FleetUpgrade, error) {
	out, err := s.res().Patch(ctx, name, "application/merge-patch+json", patch, metav1.PatchOptions{FieldManager: "meshroll", DryRun: s.writeOpts()})
	if err != nil {
		return nil, fmt.Errorf("failed to patch FleetUpgrade %q: %w", name, err)
	}
	return decode(out)
}

// IsNotFound reports a missing FleetUpgrade (or CRD).
func IsNotFound(err error) bool { return apierrors.IsNotFound(err) }

func decode(u *unstructured.Unstructured) (*v1alpha1.FleetUpgrade, error) {
	var fu v1alpha1.FleetUpgrade
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &fu); err != nil {
		return nil, fmt.Errorf("failed to decode FleetUpgrade %q: %w", u.GetName(), err)
	}
	return &fu, nil
}

func encode(fu *v1alpha1.FleetUpgrade) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(fu)
	if err != nil {
		return nil, fmt.Errorf("failed to encode FleetUpgrade %q: %w", fu.Name, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind("FleetUpgrade")
	return u, nil
}
