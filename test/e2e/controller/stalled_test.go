package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// createUpgrade creates mu as `kubectl apply` of its YAML would.
func (e *env) createUpgrade(t testing.TB, mu *v1alpha1.MeshUpgrade) {
	t.Helper()
	mu.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade"}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mu)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dyn.Resource(v1alpha1.GroupVersionResource).Create(t.Context(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// awaitStalled waits until MeshUpgrade name has Stalled=True and returns
// that condition; it fails the test if proc exits or within passes first.
func (e *env) awaitStalled(t testing.TB, proc *proc, name string, within time.Duration) *metav1.Condition {
	t.Helper()
	store := upgrade.Store{Dynamic: e.dyn}
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if err := proc.crashed(); err != nil {
			t.Fatal(err)
		}
		got, err := store.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if c := findCondition(got.Status.Conditions, "Stalled"); c != nil && c.Status == metav1.ConditionTrue {
			return c
		}
	}
	t.Fatalf("no Stalled condition within %s; controller log:\n%s", within, proc.logTail())
	return nil
}
