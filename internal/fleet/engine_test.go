package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// TestDefectRerunRefusedAsDifferentSpec: a rerun of the same `fleet
// upgrade` after a kill was refused ("already exists with a different
// spec") because the stored selectors came back from the API server
// without the empty matchLabels map the flags' parser had made.
func TestDefectRerunRefusedAsDifferentSpec(t *testing.T) {
	asked := fixtureSpec()
	sel, err := metav1.ParseToLabelSelector("env in (testing,dev)")
	if err != nil {
		t.Fatal(err)
	}
	asked.Stages[0].Selector = *sel
	stored := *asked.DeepCopy()
	stored.Stages[0].Selector.MatchLabels = nil // what the round trip returns
	stored.Approved = []string{"prod"}          // approved while it ran
	if !SameSpec(stored, asked) {
		t.Fatalf("the rerun's spec is not recognised as the stored one")
	}
	asked.Version = "1.25.0"
	if SameSpec(stored, asked) {
		t.Fatalf("a different version compares equal")
	}
}

// flakyDriver fails a member's first runs as a member cut off mid-install
// does, then lets it succeed.
type flakyDriver struct {
	mu        sync.Mutex
	failFirst int
	runs      map[string]int
	done      map[string]bool
}

func (d *flakyDriver) Upgrade(_ context.Context, c Cluster, _ *v1alpha1.FleetUpgrade) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs[c.Name]++
	if d.runs[c.Name] <= d.failFirst {
		return errors.New("cannot reach the Kubernetes API server: connection refused")
	}
	d.done[c.Name] = true
	return nil
}

func (d *flakyDriver) Rollback(context.Context, Cluster, string) error { return nil }

func (d *flakyDriver) observe(_ context.Context, c Cluster, _, _ string, _ time.Time) Observation {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := succeeded()
	if !d.done[c.Name] {
		o.Phase = ""
	}
	return o
}

func newFakeStore(t *testing.T, fu *v1alpha1.FleetUpgrade) Store {
	t.Helper()
	s := runtime.NewScheme()
	u, err := encode(fu)
	if err != nil {
		t.Fatal(err)
	}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(s, map[schema.GroupVersionResource]string{v1alpha1.FleetUpgradeGVR: "FleetUpgradeList"}, u)
	return Store{Dynamic: dc}
}

// runEngine runs the engine with a fast clock and fake members.
func runEngine(t *testing.T, d *flakyDriver, spec v1alpha1.FleetUpgradeSpec) (*v1alpha1.FleetUpgrade, error) {
	t.Helper()
	fu := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "fu"}, Spec: spec}
	e := &Engine{Store: newFakeStore(t, fu), Clusters: fixtureClusters(), Driver: d, Observe: d.observe,
		Poll: 5 * time.Millisecond, Backoff: time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return e.Run(ctx, "fu")
}

// TestDefectMemberCutOffMidInstallCountedAsRefusal: a member run that ended
// in a connection error before the member's MeshUpgrade existed failed the
// cluster as "refused" (seen in the e2e when prod was cut off during its
// install); it must be retried, and only a failure that repeats is a
// refusal.
func TestDefectMemberCutOffMidInstallCountedAsRefusal(t *testing.T) {
	spec := fixtureSpec()
	spec.Approved = []string{"prod"}
	spec.ClusterSoak.Duration, spec.Stages[1].Soak.Duration = 0, 0
	d := &flakyDriver{failFirst: 2, runs: map[string]int{}, done: map[string]bool{}}
	fu, err := runEngine(t, d, spec)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, fu.Status.Message)
	}
	if fu.Status.Phase != v1alpha1.FleetSucceeded || d.runs["prod-2"] != 3 {
		t.Fatalf("phase %s, prod-2 ran %d time(s): %s", fu.Status.Phase, d.runs["prod-2"], fu.Status.Message)
	}
	// A refusal that repeats fails the cluster, with its reason.
	d = &flakyDriver{failFirst: 100, runs: map[string]int{}, done: map[string]bool{}}
	fu, err = runEngine(t, d, spec)
	if !errors.Is(err, ErrHalted) || !strings.Contains(fu.Status.Message, "testing-1 (the member refused the upgrade before any change: cannot reach") ||
		!strings.Contains(fu.Status.Message, "(3 attempts)") {
		t.Fatalf("err %v: %s", err, fu.Status.Message)
	}
}
