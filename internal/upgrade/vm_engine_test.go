package upgrade

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// fakeAgents stands in for meshroll-agent on every WorkloadEntry (the real
// agents run in test/e2e/vm): whatever is assigned it reports Ready on, or,
// for a version in bad, RolledBack with a reason, as the agent does when the
// new sidecar fails its health check.
func fakeAgents(ctx context.Context, dyn dynamic.Interface, bad string) {
	res := dyn.Resource(inventory.WorkloadEntryGVR).Namespace("vms")
	for ctx.Err() == nil {
		list, _ := res.List(ctx, metav1.ListOptions{})
		for _, it := range list.Items {
			vm, _ := inventory.VMFromAnnotations(it.GetNamespace(), it.GetName(), it.GetAnnotations())
			ann := map[string]any{vmagent.AnnotationHeartbeat: time.Now().UTC().Format(time.RFC3339)}
			switch {
			case vm.Desired.IsZero() || vm.HealthyOn(vm.Desired) || vm.FailedOn(vm.Desired):
			case vm.Desired.Version == bad:
				ann[vmagent.AnnotationPhase], ann[vmagent.AnnotationTarget] = string(vmagent.PhaseRolledBack), vm.Desired.String()
				ann[vmagent.AnnotationError] = "sidecar not healthy on " + vm.Desired.String()
			default:
				ann[vmagent.AnnotationPhase], ann[vmagent.AnnotationTarget] = string(vmagent.PhaseReady), vm.Desired.String()
				ann[vmagent.AnnotationRevision], ann[vmagent.AnnotationVersion] = vm.Desired.Revision, vm.Desired.Version
			}
			body := `{"metadata":{"annotations":` + toJSON(ann) + `}}`
			_, _ = res.Patch(ctx, it.GetName(), types.MergePatchType, []byte(body), metav1.PatchOptions{})
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func toJSON(m map[string]any) string {
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, v := range m {
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":"` + v.(string) + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// vmRun is a planned run of three VMs on 1-23-2 in two waves, with its
// WorkloadEntries and fake agents.
func vmRun(t *testing.T, bad string, policy v1alpha1.RollbackPolicy) (*Engine, *memStore, dynamic.Interface) {
	t.Helper()
	old := "1-23-2@1.23.2"
	var objs []runtime.Object
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "u", Generation: 1}}
	mu.Spec = v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2", Rollback: policy,
		Strategy: v1alpha1.Strategy{Parallelism: 2, RolloutTimeout: metav1.Duration{Duration: 20 * time.Second}}}
	mu.Status = v1alpha1.MeshUpgradeStatus{Phase: v1alpha1.PhasePending, Waves: 2, VMVersion: "1.24.2", RestartToken: "t"}
	for i, name := range []string{"a", "b", "c"} {
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
			"metadata": map[string]any{"name": name, "namespace": "vms", "annotations": map[string]any{
				vmagent.AnnotationAgent: "", vmagent.AnnotationDesiredRevision: "1-23-2", vmagent.AnnotationDesiredVersion: "1.23.2",
				vmagent.AnnotationRevision: "1-23-2", vmagent.AnnotationVersion: "1.23.2", vmagent.AnnotationPhase: string(vmagent.PhaseReady),
				vmagent.AnnotationHeartbeat: time.Now().UTC().Format(time.RFC3339)}},
		}})
		mu.Status.Workloads = append(mu.Status.Workloads, v1alpha1.WorkloadStatus{Kind: VMKind, Namespace: "vms", Name: name,
			Wave: min(i+1, 2), Mechanism: v1alpha1.MechanismVM, Via: old})
	}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{inventory.WorkloadEntryGVR: "WorkloadEntryList"}, objs...)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); fakeAgents(ctx, dyn, bad) }()
	t.Cleanup(func() { cancel(); <-done })
	store := &memStore{mu: mu}
	e := &Engine{Store: store, Kube: fake.NewClientset(), FlushEvery: time.Millisecond,
		VMs: &dataplane.VMExecutor{Dyn: dyn, Poll: 5 * time.Millisecond, StaleAfter: time.Minute}}
	return e, store, dyn
}

// TestEngineMovesVMsInWaves: the engine assigns each VM the target revision
// with the frozen release, waits for its agent's Ready report, judges the
// wave's readiness from the reports and finishes; the WorkloadEntries carry
// the upgrade's record too (name and previous assignment).
func TestEngineMovesVMsInWaves(t *testing.T) {
	e, store, dyn := vmRun(t, "", v1alpha1.RollbackAuto)
	mu, err := e.Run(t.Context(), "u")
	if err != nil || mu.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("run: %v, phase %s (%s)", err, mu.Status.Phase, mu.Status.Message)
	}
	for _, w := range store.mu.Status.Workloads {
		if w.Outcome != v1alpha1.OutcomeSucceeded {
			t.Errorf("%s: outcome %s (%s)", w.Ref(), w.Outcome, w.Message)
		}
	}
	readiness := 0
	for _, g := range store.mu.Status.Gates {
		if g.Name == readinessGate && g.Passed {
			readiness++
		}
	}
	if readiness != 2 {
		t.Errorf("%d readiness gates passed, want one per wave (2): %+v", readiness, store.mu.Status.Gates)
	}
	vms, err := inventory.ReadVMs(t.Context(), dyn)
	if err != nil {
		t.Fatal(err)
	}
	to := vmagent.Assignment{Revision: "1-24-2", Version: "1.24.2"}
	for _, vm := range vms {
		if !vm.HealthyOn(to) || vm.Desired != to || vm.Upgrade != "u" || vm.Previous != "1-23-2@1.23.2" {
			t.Errorf("VM %s: desired %s running %s upgrade %q previous %q; want Ready on %s, recorded", vm.Ref(), vm.Desired, vm.Running, vm.Upgrade, vm.Previous, to)
		}
	}
}

// TestEngineHaltsOnAFailedVM: a VM whose agent gives up on the new release
// (it rolled the VM back itself) fails its wave like a failed rollout: with
// rollback policy Manual the run halts before wave 2, the VM's record gives
// the agent's reason, and no VM of wave 2 is assigned.
func TestEngineHaltsOnAFailedVM(t *testing.T) {
	e, store, dyn := vmRun(t, "1.24.2", v1alpha1.RollbackManual)
	mu, err := e.Run(t.Context(), "u")
	if mu == nil || mu.Status.Phase != v1alpha1.PhaseHalted {
		t.Fatalf("run: %v; want Halted", err)
	}
	first := store.mu.Status.Workloads[0]
	if first.Outcome != v1alpha1.OutcomeFailed || !strings.Contains(first.Message, "sidecar not healthy") {
		t.Errorf("wave 1 VM: outcome %s, message %q; want Failed with the agent's reason", first.Outcome, first.Message)
	}
	vms, err := inventory.ReadVMs(t.Context(), dyn)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms[1:] {
		if vm.Upgrade != "" || vm.Desired.Revision != "1-23-2" {
			t.Errorf("wave 2 VM %s was assigned %s by %q after wave 1 failed", vm.Ref(), vm.Desired, vm.Upgrade)
		}
	}
}
