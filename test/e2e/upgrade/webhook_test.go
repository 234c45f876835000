package upgrade

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/webhook"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
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

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var out, errOut bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		cli.Main(ctx, []string{"webhook", "--listen", addr, "--kubeconfig", sandboxtest.Kubeconfig(t)}, &out, &errOut)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhook.ConfigName, metav1.GetOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("webhook never registered: %v\n%s%s", err, out.String(), errOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

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

	cancel()
	wg.Wait()
	if _, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhook.ConfigName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook still registered after the command stopped: %v", err)
	}
}
