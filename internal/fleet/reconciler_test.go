package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// hubWith is a fake hub holding one member Secret per fixture cluster.
func hubWith(clusters []Cluster) *fake.Clientset {
	hub := fake.NewClientset()
	for _, c := range clusters {
		labels := map[string]string{LabelCluster: c.Name}
		for k, v := range c.Labels {
			labels[k] = v
		}
		_, _ = hub.CoreV1().Secrets(DefaultNamespace).Create(context.Background(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: c.Name + "-kubeconfig", Namespace: DefaultNamespace, Labels: labels},
			Data:       map[string][]byte{KeyValue: []byte("apiVersion: v1\nkind: Config\n")}}, metav1.CreateOptions{})
	}
	return hub
}

// reconcileUntil calls Reconcile the way the controller's queue would
// (requeues honoured at once) until it asks for no requeue or n calls.
func reconcileUntil(t *testing.T, r *Reconciler, n int) (calls int, last ctrl.Result) {
	t.Helper()
	for calls = 1; calls <= n; calls++ {
		res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "fu"}})
		if err != nil {
			t.Fatalf("reconcile %d: %v", calls, err)
		}
		if res.RequeueAfter == 0 {
			return calls, res
		}
		last = res
		time.Sleep(time.Millisecond)
	}
	return calls, last
}

// TestReconcilerOneStepPerReconcile: the hub controller's reconciler carries
// a FleetUpgrade applied from Git to the end with the engine's own Step, a
// wait being a requeue: paused, it records why and starts nothing; unpaused,
// every member runs once, the history becomes events, and the FleetUpgrade's
// Lease is given up at the end.
func TestReconcilerOneStepPerReconcile(t *testing.T) {
	spec := fixtureSpec()
	spec.Approved, spec.Paused = []string{"prod"}, true
	spec.ClusterSoak.Duration, spec.Stages[1].Soak.Duration = 0, 0
	fu := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu"}, Spec: spec}
	store := newFakeStore(t, fu)
	hub := hubWith(fixtureClusters())
	d := &flakyDriver{runs: map[string]int{}, done: map[string]bool{}}
	rec := events.NewFakeRecorder(100)
	r := &Reconciler{Store: store, Hub: hub, Namespace: DefaultNamespace, Driver: d, Observe: d.observe,
		Recorder: rec, Identity: "test/1/1", Poll: time.Millisecond}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() { _ = r.Start(ctx) }()
	for !r.running() {
		time.Sleep(time.Millisecond)
	}

	if _, res := reconcileUntil(t, r, 3); res.RequeueAfter == 0 {
		t.Fatalf("a paused FleetUpgrade is not requeued")
	}
	got, err := store.Get(t.Context(), "fu")
	if err != nil {
		t.Fatal(err)
	}
	if c := findCondition(got.Status.Conditions, v1alpha1.FleetConditionProgressing); c == nil || c.Reason != v1alpha1.ReasonPaused || len(d.runs) > 0 {
		t.Fatalf("paused: condition %+v, member runs %v", c, d.runs)
	}

	if _, err := store.Patch(t.Context(), "fu", []byte(`{"spec":{"paused":false}}`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	calls, res := reconcileUntil(t, r, 2000)
	t.Logf("%d reconciles in %s", calls, time.Since(start))
	if res.RequeueAfter != 0 {
		t.Fatalf("not done after %d reconciles", calls)
	}
	got, err = store.Get(t.Context(), "fu")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1alpha1.FleetSucceeded {
		t.Fatalf("phase %s: %s", got.Status.Phase, got.Status.Message)
	}
	for _, c := range fixtureClusters() {
		if d.runs[c.Name] != 1 {
			t.Errorf("%s ran %d time(s), want once", c.Name, d.runs[c.Name])
		}
	}
	var seen []string
	for len(rec.Events) > 0 {
		seen = append(seen, <-rec.Events)
	}
	all := strings.Join(seen, "\n")
	for _, want := range []string{"Normal Pause", "Normal Cluster", "Normal Stage", "Normal Fleet"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q event among:\n%s", want, all)
		}
	}
	if leases, _ := hub.CoordinationV1().Leases(DefaultNamespace).List(t.Context(), metav1.ListOptions{}); len(leases.Items) != 0 {
		t.Errorf("the FleetUpgrade's Lease is still held: %s", *leases.Items[0].Spec.HolderIdentity)
	}
}

// TestReconcilerMissingMembersIsACondition: a hub without member Secrets
// (or one without a kubeconfig) is a MembersUnavailable condition and a
// warning event, retried later; no plan is frozen and nothing runs.
func TestReconcilerMissingMembersIsACondition(t *testing.T) {
	fu := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu"}, Spec: fixtureSpec()}
	store := newFakeStore(t, fu)
	d := &flakyDriver{runs: map[string]int{}, done: map[string]bool{}}
	rec := events.NewFakeRecorder(10)
	r := &Reconciler{Store: store, Hub: fake.NewClientset(), Namespace: DefaultNamespace, Driver: d, Recorder: rec}
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "fu"}})
	if err != nil || res.RequeueAfter == 0 {
		t.Fatalf("reconcile: %v, %+v: want a later retry", err, res)
	}
	got, err := store.Get(t.Context(), "fu")
	if err != nil {
		t.Fatal(err)
	}
	c := findCondition(got.Status.Conditions, v1alpha1.FleetConditionProgressing)
	if c == nil || c.Reason != v1alpha1.ReasonMembersUnavailable || !strings.Contains(c.Message, "no member cluster found") ||
		len(got.Status.Clusters) != 0 || len(d.runs) != 0 {
		t.Fatalf("condition %+v, plan %v, runs %v", c, got.Status.Clusters, d.runs)
	}
	if len(rec.Events) != 1 {
		t.Errorf("%d events, want one warning", len(rec.Events))
	}
}

// TestDefectMemberSecretsListedEveryPoll: the hub controller listed every
// member Secret (each a kubeconfig) at each reconcile, i.e. every poll of
// every running FleetUpgrade. It now lists them once while it leads and
// follows changes through a watch: a member added later is still planned.
func TestDefectMemberSecretsListedEveryPoll(t *testing.T) {
	spec := fixtureSpec()
	spec.Paused = true
	fu := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu"}, Spec: spec}
	store := newFakeStore(t, fu)
	hub := hubWith(fixtureClusters())
	var lists atomic.Int32
	hub.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		return false, nil, nil
	})
	d := &flakyDriver{runs: map[string]int{}, done: map[string]bool{}}
	r := &Reconciler{Store: store, Hub: hub, Namespace: DefaultNamespace, Driver: d, Observe: d.observe,
		Recorder: events.NewFakeRecorder(100), Identity: "test/1/1", Poll: time.Millisecond}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() { _ = r.Start(ctx) }()
	for !r.running() {
		time.Sleep(time.Millisecond)
	}
	if calls, _ := reconcileUntil(t, r, 20); calls < 20 {
		t.Fatalf("a paused FleetUpgrade ended after %d reconciles", calls)
	}
	if n := lists.Load(); n != 1 {
		t.Errorf("member Secrets listed %d times in 20 reconciles, want once", n)
	}

	// A member registered after the informer's list is seen through its watch.
	late := Cluster{Name: "late", Labels: map[string]string{"env": "prod"}}
	if _, err := hub.CoreV1().Secrets(DefaultNamespace).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "late-kubeconfig", Namespace: DefaultNamespace, Labels: map[string]string{LabelCluster: late.Name, "env": "prod"}},
		Data:       map[string][]byte{KeyValue: []byte("apiVersion: v1\nkind: Config\n")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		cs, err := r.loadMembers(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		names = names[:0]
		for _, c := range cs {
			names = append(names, c.Name)
		}
		if slices.Contains(names, late.Name) {
			break
		}
	}
	if !slices.Contains(names, late.Name) || len(names) != len(fixtureClusters())+1 {
		t.Errorf("members after a Secret was added: %v, want the fixture's and %q", names, late.Name)
	}
	if n := lists.Load(); n != 1 {
		t.Errorf("member Secrets listed %d times, want once", n)
	}
}

// TestMembersReadDirectlyWhileWatchFails: with a Role that grants list but
// not watch, the informer lists once and never hears of a change; while
// its watch fails the members are read straight from the hub, so a member
// registered later is still seen.
func TestMembersReadDirectlyWhileWatchFails(t *testing.T) {
	hub := hubWith(fixtureClusters())
	hub.PrependWatchReactor("secrets", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("watch not granted"))
	})
	r := &Reconciler{Hub: hub, Namespace: DefaultNamespace}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() { _ = r.Start(ctx) }()
	for !r.running() {
		time.Sleep(time.Millisecond)
	}
	for end := time.Now().Add(10 * time.Second); r.members.failed.Load() == 0 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if r.members.failed.Load() == 0 {
		t.Fatal("the refused watch was never reported")
	}
	if _, err := hub.CoreV1().Secrets(DefaultNamespace).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "late-kubeconfig", Namespace: DefaultNamespace, Labels: map[string]string{LabelCluster: "late"}},
		Data:       map[string][]byte{KeyValue: []byte("apiVersion: v1\nkind: Config\n")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cs, err := r.loadMembers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	if !slices.Contains(names, "late") {
		t.Errorf("members %v lack the one registered after the refused watch", names)
	}
}
