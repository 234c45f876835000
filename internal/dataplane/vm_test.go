package dataplane

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

func workloadEntry(name string, ann map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
		"metadata": map[string]any{"name": name, "namespace": "vms", "annotations": ann},
	}}
}

func fakeVMs(objs ...runtime.Object) VMExecutor {
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{inventory.WorkloadEntryGVR: "WorkloadEntryList"}, objs...)
	return VMExecutor{Dyn: dyn, Poll: time.Millisecond, StaleAfter: time.Minute}
}

// TestAssignVMKeepsTheFirstPrevious: a repeated assignment by the same
// upgrade (a resumed run) must not record the new revision as "previous".
func TestAssignVMKeepsTheFirstPrevious(t *testing.T) {
	ex := fakeVMs(workloadEntry("a", map[string]any{
		vmagent.AnnotationDesiredRevision: "1-23-2", vmagent.AnnotationDesiredVersion: "1.23.2",
	}))
	to := vmagent.Assignment{Revision: "1-24-2", Version: "1.24.2"}
	ctx := context.Background()
	for range 2 {
		if err := ex.AssignVM(ctx, inventory.VMProxy{Namespace: "vms", Name: "a"}, to, "u1"); err != nil {
			t.Fatal(err)
		}
	}
	vm, err := ex.GetVM(ctx, "vms", "a")
	if err != nil {
		t.Fatal(err)
	}
	if vm.Desired != to || vm.Previous != "1-23-2@1.23.2" || vm.Upgrade != "u1" {
		t.Fatalf("after two assignments: desired %s, previous %q, upgrade %q", vm.Desired, vm.Previous, vm.Upgrade)
	}
}

func TestWaitVM(t *testing.T) {
	now := time.Now().UTC()
	to := vmagent.Assignment{Revision: "1-24-2", Version: "1.24.2"}
	beat := now.Format(time.RFC3339)
	for _, c := range []struct {
		name string
		ann  map[string]any
		err  string
	}{
		{"ready", map[string]any{vmagent.AnnotationPhase: "Ready", vmagent.AnnotationRevision: "1-24-2", vmagent.AnnotationVersion: "1.24.2", vmagent.AnnotationHeartbeat: beat}, ""},
		{"rolled back", map[string]any{vmagent.AnnotationPhase: "RolledBack", vmagent.AnnotationTarget: to.String(), vmagent.AnnotationError: "503", vmagent.AnnotationHeartbeat: beat}, "agent reports RolledBack: 503"},
		{"silent", map[string]any{vmagent.AnnotationPhase: "Upgrading", vmagent.AnnotationHeartbeat: now.Add(-time.Hour).Format(time.RFC3339)}, "agent unreachable"},
		{"slow", map[string]any{vmagent.AnnotationPhase: "Upgrading", vmagent.AnnotationHeartbeat: beat}, "not healthy on 1-24-2@1.24.2 within"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := fakeVMs(workloadEntry("a", c.ann))
			_, err := ex.WaitVM(context.Background(), "vms", "a", to, 20*time.Millisecond)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrVMFailed)) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}
