package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// FieldManager owns every field meshroll applies, so a later apply can take
// fields back from a human edit (force) and `kubectl get --show-managed-fields`
// tells who wrote what.
const FieldManager = "meshroll"

// Action says what an apply did to one object.
type Action string

// Actions reported per object.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
)

// Change is the outcome of applying one object.
type Change struct {
	Kind, Namespace, Name string
	Action                Action
}

func (c Change) String() string {
	if c.Namespace == "" {
		return fmt.Sprintf("%s/%s %s", c.Kind, c.Name, c.Action)
	}
	return fmt.Sprintf("%s %s/%s %s", c.Kind, c.Namespace, c.Name, c.Action)
}

// Applier applies unstructured objects with server-side apply. It resolves
// kinds through discovery, refreshed after CRDs are established.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	dryRun bool
}

// NewApplier returns an Applier; with dryRun every write is a server-side
// dry run, so admission and validation still judge the objects.
func NewApplier(dyn dynamic.Interface, disc discovery.DiscoveryInterface, dryRun bool) *Applier {
	return &Applier{
		dyn:    dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		dryRun: dryRun,
	}
}

func (a *Applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to map kind %q: %w", gvk.String(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// Apply server-side applies each object in order and reports what changed.
// It stops at the first failure: the objects before it stay applied, which
// is safe because every apply is idempotent and a rerun continues.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) ([]Change, error) {
	changes := make([]Change, 0, len(objs))
	for _, obj := range objs {
		ch, err := a.applyOne(ctx, obj)
		if err != nil {
			return changes, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

func (a *Applier) applyOne(ctx context.Context, obj *unstructured.Unstructured) (Change, error) {
	ch := Change{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	ri, err := a.resource(obj)
	if err != nil {
		return ch, err
	}
	before := ""
	cur, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return ch, fmt.Errorf("failed to get %s %q: %w", ch.Kind, ch.Name, err)
	default:
		before = cur.GetResourceVersion()
		took, err := a.takeBackClientConfig(ctx, ri, cur, obj)
		if err != nil {
			return ch, err
		}
		if took && a.dryRun {
			// The apply below would be judged against the object as it is,
			// not as the take-back would leave it.
			ch.Action = Configured
			return ch, nil
		}
	}
	body, err := json.Marshal(obj.Object)
	if err != nil {
		return ch, fmt.Errorf("failed to encode %s %q: %w", ch.Kind, ch.Name, err)
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue()}
	if a.dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	after, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
	if err != nil {
		return ch, fmt.Errorf("failed to apply %s %q: %w", ch.Kind, ch.Name, err)
	}
	switch {
	case before == "":
		ch.Action = Created
	case after.GetResourceVersion() != before:
		ch.Action = Configured
	default:
		ch.Action = Unchanged
	}
	return ch, nil
}

func ptrTrue() *bool { t := true; return &t }

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WaitEstablished blocks until every named CRD reports Established, then
// refreshes discovery so instances of the new kinds can be applied.
func (a *Applier) WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	if a.dryRun || len(names) == 0 {
		return nil
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			crd, err := a.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // not visible yet: keep polling until the timeout.
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("failed to wait for CRD %q to be established within %s: %w", name, timeout, err)
		}
	}
	a.mapper.Reset()
	return nil
}

// Summarize counts changes by action, for one-line progress messages.
func Summarize(changes []Change) string {
	counts := map[Action]int{}
	for _, c := range changes {
		counts[c.Action]++
	}
	return fmt.Sprintf("%d created, %d configured, %d unchanged", counts[Created], counts[Configured], counts[Unchanged])
}

// Get reads the live copy of obj (same kind, namespace and name).
func (a *Applier) Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := a.resource(obj)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
}
