package upgrade

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// bakingUpgrade is a one-wave run whose wave moved and passed its gates at
// passed, with a bake of bake still to go.
func bakingUpgrade(passed time.Time, bake time.Duration) *v1alpha1.MeshUpgrade {
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "u", Generation: 1}}
	mu.Spec = v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2", Rollback: v1alpha1.RollbackAuto,
		Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Percent: 100}}, Parallelism: 1, Bake: metav1.Duration{Duration: bake}}}
	mu.Status = v1alpha1.MeshUpgradeStatus{Phase: v1alpha1.PhaseMigrating, Waves: 1, CurrentWave: 1,
		Workloads: []v1alpha1.WorkloadStatus{{Kind: "Deployment", Namespace: "a", Name: "web", Wave: 1,
			Mechanism: v1alpha1.MechanismPod, Outcome: v1alpha1.OutcomeSucceeded}},
		Gates: []v1alpha1.GateResult{{Wave: 1, Name: readinessGate, Passed: true, At: metav1.NewTime(passed)}}}
	return mu
}

// TestStepReturnsBakeAsRequeue: Step never sleeps; a bake comes back as the
// time to requeue (the controller's reconcile returns it), and once that
// time has come the next Step gates again and finishes the run.
func TestStepReturnsBakeAsRequeue(t *testing.T) {
	passed := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	now := passed.Add(time.Minute)
	store := &memStore{mu: bakingUpgrade(passed, time.Hour)}
	e := &Engine{Store: store, Kube: fake.NewClientset(), Now: func() time.Time { return now }}

	start := time.Now()
	mu, res, err := e.Step(t.Context(), "u")
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("Step took %s: it must return the bake, not sleep through it", took)
	}
	if res.Final || !res.RequeueAt.Equal(passed.Add(time.Hour)) {
		t.Fatalf("result %+v; want RequeueAt %s (the bake's end), not final", res, passed.Add(time.Hour))
	}
	if mu.Status.Phase != v1alpha1.PhaseBaking || store.mu.Status.Phase != v1alpha1.PhaseBaking {
		t.Errorf("phase %s (stored %s); want Baking recorded before the requeue", mu.Status.Phase, store.mu.Status.Phase)
	}

	now = passed.Add(time.Hour + time.Second)
	mu, res, err = e.Step(t.Context(), "u")
	if err != nil {
		t.Fatalf("second Step: %v", err)
	}
	if !res.Final || mu.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("after the bake: result %+v, phase %s (%s); want final Succeeded", res, mu.Status.Phase, mu.Status.Message)
	}
}

// TestRunIsStepsUntilFinal: Run loops over the same Step, sleeping through
// the wait, and ends with the final object.
func TestRunIsStepsUntilFinal(t *testing.T) {
	passed := time.Now().Add(-time.Minute)
	store := &memStore{mu: bakingUpgrade(passed, time.Minute+200*time.Millisecond)}
	e := &Engine{Store: store, Kube: fake.NewClientset(), PollEvery: 50 * time.Millisecond}
	mu, err := e.Run(t.Context(), "u")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if mu.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("phase %s (%s); want Succeeded", mu.Status.Phase, mu.Status.Message)
	}
	baked := false
	for _, h := range mu.Status.History {
		baked = baked || h.Type == string(v1alpha1.PhaseBaking)
	}
	if !baked {
		t.Errorf("history %+v has no Baking entry: Run skipped the bake", mu.Status.History)
	}
}

// TestStepPausedBySpec: spec.paused stops the run with nothing to requeue
// (an edit of the MeshUpgrade wakes the controller), and lifting it picks
// up where the run stood.
func TestStepPausedBySpec(t *testing.T) {
	passed := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	now := passed.Add(time.Minute)
	mu := bakingUpgrade(passed, time.Hour)
	mu.Spec.Paused = true
	store := &memStore{mu: mu}
	e := &Engine{Store: store, Kube: fake.NewClientset(), Now: func() time.Time { return now }}
	got, res, err := e.Step(t.Context(), "u")
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	if !res.Paused || res.Final || !res.RequeueAt.IsZero() || got.Status.Phase != v1alpha1.PhasePaused {
		t.Fatalf("result %+v, phase %s; want Paused with no requeue time", res, got.Status.Phase)
	}
	store.mu.Spec.Paused = false
	got, res, err = e.Step(t.Context(), "u")
	if err != nil {
		t.Fatalf("Step after the pause: %v", err)
	}
	if res.Paused || got.Status.Phase != v1alpha1.PhaseBaking || !res.RequeueAt.Equal(passed.Add(time.Hour)) {
		t.Errorf("result %+v, phase %s; want the bake resumed", res, got.Status.Phase)
	}
}
