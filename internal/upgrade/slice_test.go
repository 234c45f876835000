package upgrade

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// slowUpgrade is a planned one-wave run over n Deployments of namespace
// a whose rollouts never end until rollOut completes them.
func slowUpgrade(t *testing.T, n int) (*v1alpha1.MeshUpgrade, kubernetes.Interface) {
	t.Helper()
	kube := fake.NewClientset()
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "u", Generation: 1}}
	mu.Spec = v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2", Rollback: v1alpha1.RollbackManual,
		Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Percent: 100}}, Parallelism: n}}
	now := metav1.Now()
	mu.Status = v1alpha1.MeshUpgradeStatus{Phase: v1alpha1.PhasePending, Waves: 1, StartedAt: &now, RestartToken: "t1"}
	for i := range n {
		name := fmt.Sprintf("web%d", i)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, Generation: 1},
			Spec:   appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 0}}
		if _, err := kube.AppsV1().Deployments("a").Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		mu.Status.Workloads = append(mu.Status.Workloads, v1alpha1.WorkloadStatus{Kind: "Deployment", Namespace: "a",
			Name: name, Wave: 1, Mechanism: v1alpha1.MechanismPod, Pods: 1})
	}
	return mu, kube
}

// rollOut completes the rollout of Deployment a/name.
func rollOut(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	d, err := kube.AppsV1().Deployments("a").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	if _, err := kube.AppsV1().Deployments("a").UpdateStatus(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// stepWithin takes one Step of s, failing the test when it has not
// returned within d (the rollouts of slowUpgrade never end by themselves).
func stepWithin(t *testing.T, s *Session, d time.Duration) (*v1alpha1.MeshUpgrade, Result, error) {
	t.Helper()
	type step struct {
		mu  *v1alpha1.MeshUpgrade
		res Result
		err error
	}
	done := make(chan step, 1)
	go func() {
		mu, res, err := s.Step(1)
		done <- step{mu, res, err}
	}()
	select {
	case got := <-done:
		return got.mu, got.res, got.err
	case <-time.After(d):
		t.Fatalf("Step has not returned after %s with rollouts that never end: it waits for the wave instead of yielding", d)
		return nil, Result{}, nil
	}
}

func outcomes(mu *v1alpha1.MeshUpgrade) map[v1alpha1.Outcome]int {
	n := map[v1alpha1.Outcome]int{}
	for _, w := range mu.Status.Workloads {
		n[w.Outcome]++
	}
	return n
}

// TestDefectStepHeldForWholeWave: the controller's reconcile ran the
// engine's Step until every rollout of the wave ended (a reconcile of
// minutes, no edit or status read answered meanwhile). With a Slice, a
// Step returns once it has run that long, the moves still in flight in
// its Session, and the next Step records them.
func TestDefectStepHeldForWholeWave(t *testing.T) {
	mu, kube := slowUpgrade(t, 4)
	store := &memStore{mu: mu}
	e := &Engine{Store: store, Kube: kube, Slice: 200 * time.Millisecond}
	s, err := e.Open(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	got, res, err := stepWithin(t, s, 20*time.Second)
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	if res.InFlight != 4 || res.Final || got.Status.Phase != v1alpha1.PhaseMigrating {
		t.Fatalf("result %+v, phase %s; want 4 moves in flight and Migrating", res, got.Status.Phase)
	}
	if n := outcomes(store.mu)[v1alpha1.OutcomePending]; n != 4 {
		t.Fatalf("stored outcomes %v; want the 4 moves' intent recorded before the Step returned", outcomes(store.mu))
	}

	rollOut(t, kube, "web0")
	rollOut(t, kube, "web1")
	deadline := time.Now().Add(20 * time.Second)
	for res.InFlight > 2 && time.Now().Before(deadline) {
		if got, res, err = s.Step(1); err != nil {
			t.Fatalf("Step: %v", err)
		}
	}
	if res.InFlight != 2 || outcomes(got)[v1alpha1.OutcomeSucceeded] != 2 {
		t.Fatalf("in flight %d, outcomes %v; want 2 Succeeded and 2 still in flight", res.InFlight, outcomes(got))
	}
	// A yield writes nothing (progress is batched); closing the session
	// writes what its run holds.
	s.Close()
	if n := outcomes(store.mu); n[v1alpha1.OutcomeSucceeded] != 2 || n[v1alpha1.OutcomePending] != 2 {
		t.Errorf("stored outcomes after Close %v; want 2 Succeeded and the 2 cancelled moves pending", n)
	}
}

// TestSessionSeesEditBetweenSlices: a pause requested while a yielded run
// holds moves in flight is acted on by the next Step given the newer
// generation: the moves end recorded and the run pauses.
func TestSessionSeesEditBetweenSlices(t *testing.T) {
	mu, kube := slowUpgrade(t, 2)
	store := &memStore{mu: mu}
	e := &Engine{Store: store, Kube: kube, Slice: 100 * time.Millisecond}
	s, err := e.Open(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, res, err := s.Step(1); err != nil || res.InFlight != 2 {
		t.Fatalf("Step: %+v, %v; want 2 moves in flight", res, err)
	}
	store.mu.Spec.Paused, store.mu.Generation = true, 2
	rollOut(t, kube, "web0")
	rollOut(t, kube, "web1")
	var res Result
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		if _, res, err = s.Step(2); err != nil {
			t.Fatalf("Step: %v", err)
		}
		if res.InFlight == 0 {
			break
		}
	}
	if !res.Paused || store.mu.Status.Phase != v1alpha1.PhasePaused {
		t.Fatalf("result %+v, stored phase %s; want the pause seen between slices", res, store.mu.Status.Phase)
	}
	if n := outcomes(store.mu)[v1alpha1.OutcomeSucceeded]; n != 2 {
		t.Errorf("stored outcomes %v; want both started moves recorded before the pause", outcomes(store.mu))
	}
}

// TestSessionCloseRecordsMovesInFlight: closing a session that holds moves
// in flight (the manager stops) cancels them and leaves each recorded
// pending, for the next engine to resume, and gives the lease up.
func TestSessionCloseRecordsMovesInFlight(t *testing.T) {
	mu, kube := slowUpgrade(t, 3)
	store := &memStore{mu: mu}
	e := &Engine{Store: store, Kube: kube, Slice: 100 * time.Millisecond,
		Lease: &Lease{Kube: kube, Namespace: "istio-system", Holder: "a", Duration: 15 * time.Second}}
	s, err := e.Open(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if _, res, err := s.Step(1); err != nil || res.InFlight != 3 {
		t.Fatalf("Step: %+v, %v; want 3 moves in flight", res, err)
	}
	// The manager stops while a reconcile is stepping: Close and Step take
	// turns (run with -race), and both return.
	stepped := make(chan error, 1)
	go func() {
		_, _, err := s.Step(1)
		stepped <- err
	}()
	time.Sleep(30 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return: the moves in flight were not cancelled")
	}
	select {
	case err := <-stepped:
		t.Logf("the Step running while the session closed returned %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the Step running while the session closed did not return")
	}
	if n := outcomes(store.mu)[v1alpha1.OutcomePending]; n != 3 {
		t.Errorf("stored outcomes %v; want the 3 cancelled moves left pending", outcomes(store.mu))
	}
	other := &Lease{Kube: kube, Namespace: "istio-system", Holder: "b", Duration: 15 * time.Second}
	_, release, err := other.Acquire(context.WithoutCancel(t.Context()), "u")
	if err != nil {
		t.Fatalf("another engine cannot take the lease after Close: %v", err)
	}
	release()
}

// TestAdoptKeepsEngineConditions: what the controller stored between two
// Steps (its Ready condition, a new resourceVersion) is taken into the held
// run, but not an older copy of the engine's own Progressing condition,
// which may be newer in the run than in the store.
func TestAdoptKeepsEngineConditions(t *testing.T) {
	mu, kube := slowUpgrade(t, 1)
	store := &memStore{mu: mu}
	s, err := (&Engine{Store: store, Kube: kube, Slice: 100 * time.Millisecond}).Open(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, res, err := s.Step(1); err != nil || res.InFlight != 1 {
		t.Fatalf("Step: %+v, %v; want a move in flight", res, err)
	}
	stored := s.Latest()
	stored.ResourceVersion = "42"
	stored.Status.ObservedGeneration = 1
	stored.Status.Conditions = []metav1.Condition{
		{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Migrating"},
		{Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionTrue, Reason: "Stale"},
	}
	s.Adopt(stored)
	got := s.Latest()
	ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
	prog := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionProgressing)
	if got.ResourceVersion != "42" || ready == nil || got.Status.ObservedGeneration != 1 {
		t.Errorf("resourceVersion %q, Ready %+v, observedGeneration %d; want the stored ones adopted", got.ResourceVersion, ready, got.Status.ObservedGeneration)
	}
	if prog == nil || prog.Reason == "Stale" {
		t.Errorf("Progressing %+v; want the run's own, not the stored copy", prog)
	}
}
