package upgrade

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

func unplanned() *v1alpha1.MeshUpgrade {
	return &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "u", Generation: 1},
		Spec: v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2", Rollback: v1alpha1.RollbackAuto}}
}

// TestInstallerRecordsIntentBeforeWrite: the install step's record (Running,
// owned) is stored before the install's first write, so a kill during the
// install leaves something for resume and rollback to read.
func TestInstallerRecordsIntentBeforeWrite(t *testing.T) {
	store := &memStore{mu: unplanned()}
	calls := 0
	in := Installer{Store: store, Kube: fake.NewClientset(), Install: func(context.Context) (string, error) {
		calls++
		s := store.mu.Status.Step(v1alpha1.StepInstall)
		if s == nil || s.State != v1alpha1.StepRunning || store.mu.Status.Install == nil || !store.mu.Status.Install.Owned {
			t.Errorf("at the install's first write the stored record is %+v / %+v; want Running and owned", s, store.mu.Status.Install)
		}
		return "3 created", nil
	}}
	mu, err := in.Run(t.Context(), "u", "1.24.2")
	if err != nil {
		t.Fatal(err)
	}
	if s := mu.Status.Step(v1alpha1.StepInstall); calls != 1 || s == nil || s.State != v1alpha1.StepDone || !mu.Status.Install.Owned {
		t.Errorf("calls %d, step %+v, record %+v; want one install, Done, owned", calls, s, mu.Status.Install)
	}
	// A rerun finds the step done and writes nothing.
	if _, err := in.Run(t.Context(), "u", "1.24.2"); err != nil || calls != 1 {
		t.Errorf("rerun: %v, %d install call(s); want none more", err, calls)
	}
}

// TestInstallerDoesNotOwnWhatWasThere: a target installed and ready before
// the run is recorded as not owned and not installed again.
func TestInstallerDoesNotOwnWhatWasThere(t *testing.T) {
	istiod := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod-1-24-2", Namespace: istio.SystemNamespace},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 1}}
	store := &memStore{mu: unplanned()}
	in := Installer{Store: store, Kube: fake.NewClientset(istiod), Install: func(context.Context) (string, error) {
		t.Error("the install ran over a ready revision the run does not own")
		return "", nil
	}}
	mu, err := in.Run(t.Context(), "u", "1.24.2")
	if err != nil {
		t.Fatal(err)
	}
	if s := mu.Status.Step(v1alpha1.StepInstall); s == nil || s.State != v1alpha1.StepDone || mu.Status.Install == nil || mu.Status.Install.Owned {
		t.Errorf("step %+v, record %+v; want Done and not owned", s, mu.Status.Install)
	}
}

// TestSkipMigrateRecordsEveryStep: a run with spec.skipMigrate plans no
// workload, records the steps it leaves out as Skipped, and still runs the
// tags step recorded (tag moved, its record Done) before it succeeds.
func TestSkipMigrateRecordsEveryStep(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	mu := unplanned()
	mu.Spec.SkipMigrate, mu.Spec.MoveTags, mu.Spec.Strategy.Parallelism = true, true, 1
	snap := &inventory.Snapshot{Tags: []inventory.Tag{{Name: "prod", Revision: "1-23-2"}, {Name: "canary", Revision: "1-24-2"}}}
	st, err := Freeze(snap, nil, mu, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	keepRecorded(&st, mu, metav1.NewTime(now))
	mu.Status = st
	store := &memStore{mu: mu}
	moved := map[string]string{}
	e := &Engine{Store: store, Kube: fake.NewClientset(), Now: func() time.Time { return now },
		MoveTag: func(_ context.Context, tag, rev string) error { moved[tag] = rev; return nil }}
	out, res, err := e.Step(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Final || out.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("result %+v phase %s (%s); want final Succeeded", res, out.Status.Phase, out.Status.Message)
	}
	if len(moved) != 1 || moved["prod"] != "1-24-2" {
		t.Errorf("tags moved %v; want only prod → 1-24-2", moved)
	}
	want := map[string]v1alpha1.StepState{v1alpha1.StepInstall: v1alpha1.StepSkipped, v1alpha1.StepGateways: v1alpha1.StepSkipped,
		v1alpha1.StepMigrate: v1alpha1.StepSkipped, v1alpha1.StepTags: v1alpha1.StepDone, v1alpha1.StepPrune: v1alpha1.StepSkipped}
	for name, state := range want {
		if s := store.mu.Status.Step(name); s == nil || s.State != state {
			t.Errorf("stored step %s = %+v, want %s", name, s, state)
		}
	}
}

// TestInstallerResumesAReadyRevision: a run killed after its install wrote
// everything (istiod ready) but before the step's outcome was recorded is
// finished by the rerun without installing again (the CLI renders only a
// target that is not ready yet, so installing again could not work).
func TestInstallerResumesAReadyRevision(t *testing.T) {
	mu := unplanned()
	mu.Status.Install = &v1alpha1.InstallRecord{Revision: "1-24-2", Version: "1.24.2", Owned: true}
	recordStep(&mu.Status, v1alpha1.StepInstall, v1alpha1.StepRunning, "installing", metav1.Now())
	istiod := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod-1-24-2", Namespace: istio.SystemNamespace},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 1}}
	store := &memStore{mu: mu}
	in := Installer{Store: store, Kube: fake.NewClientset(istiod), Install: func(context.Context) (string, error) {
		t.Error("the install ran again over the ready revision")
		return "", nil
	}}
	out, err := in.Run(t.Context(), "u", "1.24.2")
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Status.Step(v1alpha1.StepInstall); s == nil || s.State != v1alpha1.StepDone || !out.Status.Install.Owned {
		t.Errorf("step %+v, record %+v; want Done and still owned", s, out.Status.Install)
	}
}
