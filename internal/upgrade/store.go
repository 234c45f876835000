package upgrade

import (
	"context"
	"errors"
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

// StatusStore is what the engine needs of a store: read one MeshUpgrade and
// write its status. Store implements it against the cluster; tests wrap it
// (to fail writes at a chosen moment) or keep the record in memory.
type StatusStore interface {
	// Get reads the named MeshUpgrade.
	Get(ctx context.Context, name string) (*v1alpha1.MeshUpgrade, error)
	// UpdateStatus writes mu's status and returns the stored object, whose
	// spec and metadata the engine adopts (a rollback may have been
	// requested meanwhile).
	UpdateStatus(ctx context.Context, mu *v1alpha1.MeshUpgrade) (*v1alpha1.MeshUpgrade, error)
}

var _ StatusStore = Store{}

// Store reads and writes MeshUpgrades through the dynamic client, so meshroll
// needs no generated clientset for its one resource.
type Store struct {
	Dynamic dynamic.Interface
	// DryRun sends writes as server-side dry runs.
	DryRun bool
}

func (s Store) res() dynamic.ResourceInterface {
	return s.Dynamic.Resource(v1alpha1.GroupVersionResource)
}

// EnsureCRD applies the MeshUpgrade and MeshUpgradeRecord CRDs (server-side
// apply, field manager meshroll) and waits until they are established.
func (s Store) EnsureCRD(ctx context.Context, a *controlplane.Applier) error {
	var objs []*unstructured.Unstructured
	var names []string
	for _, crd := range [][]byte{v1alpha1.CRD, v1alpha1.RecordCRD} {
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal(crd, &obj.Object); err != nil {
			return fmt.Errorf("failed to read an embedded meshroll CRD: %w", err)
		}
		objs = append(objs, &obj)
		names = append(names, obj.GetName())
	}
	if _, err := a.Apply(ctx, objs); err != nil {
		return fmt.Errorf("failed to apply the MeshUpgrade CRDs: %w", err)
	}
	if s.DryRun {
		return nil
	}
	return a.WaitEstablished(ctx, names, time.Minute)
}

// Get reads one MeshUpgrade, its records joined back into the status.
func (s Store) Get(ctx context.Context, name string) (*v1alpha1.MeshUpgrade, error) {
	u, err := s.res().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	mu, err := fromUnstructured(u)
	if err != nil {
		return nil, err
	}
	if err := s.joinRecords(ctx, mu); err != nil {
		return nil, err
	}
	return mu, nil
}

// List reads every MeshUpgrade; a cluster without the CRD has none.
func (s Store) List(ctx context.Context) ([]v1alpha1.MeshUpgrade, error) {
	l, err := s.res().List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list MeshUpgrades: %w", err)
	}
	out := make([]v1alpha1.MeshUpgrade, 0, len(l.Items))
	for i := range l.Items {
		mu, err := fromUnstructured(&l.Items[i])
		if err != nil {
			return nil, err
		}
		if err := s.joinRecords(ctx, mu); err != nil {
			return nil, err
		}
		out = append(out, *mu)
	}
	return out, nil
}

// Create stores a new MeshUpgrade.
func (s Store) Create(ctx context.Context, mu *v1alpha1.MeshUpgrade) (*v1alpha1.MeshUpgrade, error) {
	if err := CheckSize(mu); err != nil {
		return nil, err
	}
	u, err := toUnstructured(mu)
	if err != nil {
		return nil, err
	}
	opts := metav1.CreateOptions{FieldManager: "meshroll"}
	if s.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := s.res().Create(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to create MeshUpgrade %q: %w", mu.Name, err)
	}
	return fromUnstructured(out)
}

// UpdateStatus writes mu's status. On a conflict (someone edited the spec,
// e.g. `meshroll rollback`) it rereads the object, keeps the engine's status
// and retries, returning the fresh object so the engine sees the new spec.
func (s Store) UpdateStatus(ctx context.Context, mu *v1alpha1.MeshUpgrade) (*v1alpha1.MeshUpgrade, error) {
	if s.DryRun {
		return mu, nil
	}
	if err := CheckSize(mu); err != nil {
		return nil, err
	}
	full := mu
	mu, err := s.splitRecords(ctx, mu)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		u, err := toUnstructured(mu)
		if err != nil {
			return nil, err
		}
		out, err := s.res().UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "meshroll"})
		if err == nil {
			stored, err := fromUnstructured(out)
			if err != nil {
				return nil, err
			}
			if len(stored.Status.Records) > 0 { // the lists just written live in the records
				stored.Status.Workloads, stored.Status.Skipped = full.Status.Workloads, full.Status.Skipped
			}
			return stored, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return nil, fmt.Errorf("failed to update status of MeshUpgrade %q: %w", mu.Name, err)
		}
		fresh, gerr := s.Get(ctx, mu.Name)
		if gerr != nil {
			return nil, fmt.Errorf("failed to reread MeshUpgrade %q: %w", mu.Name, errors.Join(err, gerr))
		}
		fresh.Status = mu.Status
		mu = fresh
	}
}

// Patch merges a JSON patch into a MeshUpgrade's spec or metadata.
func (s Store) Patch(ctx context.Context, name string, patch []byte) (*v1alpha1.MeshUpgrade, error) {
	opts := metav1.PatchOptions{FieldManager: "meshroll"}
	if s.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := s.res().Patch(ctx, name, "application/merge-patch+json", patch, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to patch MeshUpgrade %q: %w", name, err)
	}
	return fromUnstructured(out)
}

func fromUnstructured(u *unstructured.Unstructured) (*v1alpha1.MeshUpgrade, error) {
	var mu v1alpha1.MeshUpgrade
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &mu); err != nil {
		return nil, fmt.Errorf("failed to decode MeshUpgrade %q: %w", u.GetName(), err)
	}
	return &mu, nil
}

func toUnstructured(mu *v1alpha1.MeshUpgrade) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mu)
	if err != nil {
		return nil, fmt.Errorf("failed to encode MeshUpgrade %q: %w", mu.Name, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind("MeshUpgrade")
	return u, nil
}
