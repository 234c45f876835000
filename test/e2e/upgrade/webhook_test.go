package upgrade

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/webhook"
)

// TestAssignmentWebhookKeepsRevision migrates workloads moved by pod label
// and, while the upgrade is still active (its only wave baking), plays a
// workload owner who redeploys the old manifest (istio.io/rev 1-23-2 in the
// template): with `meshroll webhook` serving, the stored Deployment keeps
// 1-24-2; a Deployment the upgrade never moved is left as its owner wrote
// it. Once the upgrade has finished, the webhook assigns nothing more.
func TestAssignmentWebhookKeepsRevision(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "assign", Namespaces: 2, Workloads: 6})
	podNS := p.Namespaces[1].Name // the unlabelled namespace: moved per workload
	mu := spec("assign", []string{podNS}, []v1alpha1.WaveSize{{Percent: 100}}, 3)
	mu.Spec.Strategy.Bake = metav1.Duration{Duration: 10 * time.Minute}
	mu = e.start(t, mu, nil)
	runCtx, stopRun := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() {
		_, err := e.engine(t, nil, nil).Run(runCtx, mu.Name)
		ran <- err
	}()
	t.Cleanup(func() { stopRun(); <-ran })
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		got, err := e.store().Get(t.Context(), mu.Name)
		if err == nil && got.Status.Phase == v1alpha1.PhaseBaking && got.Status.CurrentWave == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upgrade never baked its last wave: %v", err)
		}
	}

	stop := serveWebhook(t, e)

	owner := []byte(`{"spec":{"template":{"metadata":{"labels":{"` + istio.LabelRev + `":"` + fromRev + `"}}}}}`)
	moved := p.Workloads[1] // app-0001 lives in the pod-level namespace
	if moved.Namespace != podNS {
		t.Fatalf("fixture: %s is not in %s", moved.Name, podNS)
	}
	got, err := e.kube.AppsV1().Deployments(podNS).Patch(t.Context(), moved.Name, types.StrategicMergePatchType, owner, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := got.Spec.Template.Labels[istio.LabelRev]; rev != toRev {
		t.Errorf("owner redeploy of a moved workload stored istio.io/rev=%q, want the assigned %q", rev, toRev)
	}

	// A workload outside every upgrade keeps what its owner wrote.
	other := p.Workloads[0] // in the namespace-labelled namespace, not selected
	got, err = e.kube.AppsV1().Deployments(other.Namespace).Patch(t.Context(), other.Name, types.StrategicMergePatchType, owner, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := got.Spec.Template.Labels[istio.LabelRev]; rev != fromRev {
		t.Errorf("a workload no upgrade covers got istio.io/rev=%q, want its owner's %q", rev, fromRev)
	}

	stop() // the command unregisters its webhook on the way out
	if _, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhook.ConfigName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook still registered after the command stopped: %v", err)
	}
}
