package vm

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// controllerMovesVMs applies a MeshUpgrade (no CLI) and lets `meshroll
// controller`, run in this process, carry it out: the VMs of spec.from move
// in its waves with the pods, as with `meshroll upgrade`. Before the
// controller planned VMs it moved only the pods and left every VM on From.
func (f *fleet) controllerMovesVMs(t *testing.T, name string) {
	ctx, stop := context.WithCancel(t.Context())
	const leaseNS = "meshroll-system"
	if _, err := f.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// Locked: the manager logs from goroutines that outlive cli.Main.
	out := &gatetest.LockedBuffer{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = cli.Main(ctx, []string{"controller", "--kubeconfig", f.kubeconfig, "--leader-election-namespace", leaseNS,
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--lease-duration", "6s",
			"--renew-deadline", "4s", "--retry-period", "1s"}, out, out)
	}()
	defer func() {
		stop()
		wg.Wait()
		if t.Failed() {
			t.Logf("controller output (last 3,000 bytes): %s", tail(out.String(), 3000))
		}
	}()
	mu := &v1alpha1.MeshUpgrade{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.MeshUpgradeSpec{From: fromRev, To: toRev, Selection: v1alpha1.Selection{Namespaces: append([]string{vmNamespace}, f.mesh...)},
			Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Count: 1}, {Count: 10}, {Percent: 100}}, Parallelism: 20}},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mu)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := f.dyn.Resource(v1alpha1.GroupVersionResource).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store := upgrade.Store{Dynamic: f.dyn}
	var got *v1alpha1.MeshUpgrade
	for end := time.Now().Add(4 * time.Minute); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if got, err = store.Get(ctx, name); err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase.Final() {
			break
		}
	}
	t.Logf("controller-run MeshUpgrade %s: phase %s after %s, VMs %+v", name, got.Status.Phase, time.Since(start).Round(time.Millisecond), byKind(got, upgrade.VMKind))
	if got.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", got.Status.Phase, got.Status.Message)
	}
	if vms := byKind(got, upgrade.VMKind); vms["1:Succeeded"] != 1 || vms["2:Succeeded"] != 10 || vms["3:Succeeded"] != fleetSize-11 {
		t.Errorf("VMs by wave:outcome = %v; want 1, 10 and %d succeeded in waves 1-3", vms, fleetSize-11)
	}
	f.waitAll(vmagent.Assignment{Revision: toRev, Version: toVersion}, 30*time.Second)
	if imgs := f.proxyImages(); imgs["docker.io/istio/proxyv2:"+toVersion] != 4 || len(imgs) != 1 {
		t.Errorf("seeded pods by proxy image: %v; want all 4 on %s", imgs, toVersion)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
