package controller

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
)

// TestDefectControllerJumpsMinors: a MeshUpgrade from Git naming Istio
// 1.29.1 for a mesh on 1.23.2 (three canary hops, as `meshroll upgrade`
// plans it) was installed and migrated in one jump. It now stalls with
// PlanRefused naming the hops, before any install or workload write.
func TestDefectControllerJumpsMinors(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "jump", Namespaces: 1, Workloads: 2})
	nss := p.NamespaceNames()
	before := e.replicaSets(t, nss)
	proc := e.startController(t, "jump", 8*time.Second, "")

	const far = "1.29.1"
	mu := &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "jump"},
		Spec: v1alpha1.MeshUpgradeSpec{From: fromRev, To: istio.RevisionName(far), Version: far,
			Selection: v1alpha1.Selection{Namespaces: nss},
			Strategy:  v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Percent: 100}}, Parallelism: 2}},
	}
	e.createUpgrade(t, mu)
	t.Cleanup(func() {
		_ = e.dyn.Resource(v1alpha1.GroupVersionResource).Delete(context.WithoutCancel(t.Context()), mu.Name, metav1.DeleteOptions{})
	})
	stalled := e.awaitStalled(t, proc, mu.Name, 2*time.Minute)
	t.Logf("Stalled: %s: %s", stalled.Reason, stalled.Message)
	if stalled.Reason != controller.ReasonPlanRefused || !strings.Contains(stalled.Message, "canary hops") || !strings.Contains(stalled.Message, "meshroll upgrade --to "+far) {
		t.Errorf("Stalled = %s: %s; want %s naming the hops", stalled.Reason, stalled.Message, controller.ReasonPlanRefused)
	}
	if _, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), controlplane.IstiodName(istio.RevisionName(far)), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("istiod of %s exists (err %v): the refused jump installed it", far, err)
	}
	if after := e.replicaSets(t, nss); !maps.Equal(before, after) {
		t.Errorf("ReplicaSets changed: before %v, after %v (a workload was moved)", before, after)
	}
}
