package controller

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestHubListsMembersAsChartServiceAccount: a hub's FleetUpgrade
// reconciler, run as the chart's ServiceAccount (impersonated), reads the
// member Secrets in the fleet namespace: a paused FleetUpgrade over one
// member is recorded Paused (the member was listed; an empty list would be
// MembersUnavailable). An identity bound to the chart's ClusterRole alone,
// without the chart's fleet Role, is refused the list, which the
// FleetUpgrade shows as MembersUnavailable naming it.
func TestHubListsMembersAsChartServiceAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: needs the sandbox (run without -short)")
	}
	admin := sandboxtest.Config(t)
	kube := kubernetes.NewForConfigOrDie(admin)
	dyn := dynamic.NewForConfigOrDie(admin)
	installChart(t) // also installs the FleetUpgrade CRD: every chart install can be a hub
	ctx := context.WithoutCancel(t.Context())

	// The sandbox itself registered as member "hub-m1" of stage testing.
	kc, err := os.ReadFile(sandboxtest.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	member := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hub-m1", Namespace: fleet.DefaultNamespace,
		Labels: map[string]string{fleet.LabelCluster: "hub-m1", "env": "testing"}}, Data: map[string][]byte{fleet.KeyKubeconfig: kc}}
	if _, err := kube.CoreV1().Secrets(fleet.DefaultNamespace).Create(ctx, member, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Secrets(fleet.DefaultNamespace).Delete(ctx, member.Name, metav1.DeleteOptions{})
	})

	// The identity without the fleet Role: the chart's ClusterRole only.
	const bare = "meshroll-no-fleet-role"
	if _, err := kube.CoreV1().ServiceAccounts(charts.DefaultNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: bare}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: bare},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: charts.DefaultRelease},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: bare, Namespace: charts.DefaultNamespace}}}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(ctx, bare, metav1.DeleteOptions{})
		_ = kube.CoreV1().ServiceAccounts(charts.DefaultNamespace).Delete(ctx, bare, metav1.DeleteOptions{})
	})

	for _, tt := range []struct {
		user, want string
	}{
		{"system:serviceaccount:" + charts.DefaultNamespace + ":" + bare, v1alpha1.ReasonMembersUnavailable},
		{chartSA, v1alpha1.ReasonPaused},
	} {
		fu := &v1alpha1.FleetUpgrade{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "FleetUpgrade"},
			ObjectMeta: metav1.ObjectMeta{Name: "hub-rbac"},
			Spec: v1alpha1.FleetUpgradeSpec{Version: toVersion, Paused: true, Stages: []v1alpha1.FleetStage{{Name: "testing",
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "testing"}}}}},
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(fu)
		if err != nil {
			t.Fatal(err)
		}
		fus := dyn.Resource(v1alpha1.FleetUpgradeGVR)
		if _, err := fus.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c := reconcileFleetAs(t, tt.user, fu.Name)
		if err := fus.Delete(ctx, fu.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if c == nil || c.Reason != tt.want {
			t.Errorf("as %s: FleetUpgrade condition %+v, want reason %s", tt.user, c, tt.want)
			continue
		}
		t.Logf("as %s: %s: %s", tt.user, c.Reason, c.Message)
	}
}

// reconcileFleetAs runs the hub's FleetUpgrade reconciler as user until the
// FleetUpgrade has a Progressing condition, and returns it.
func reconcileFleetAs(t *testing.T, user, name string) *metav1.Condition {
	t.Helper()
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	hub := kubernetes.NewForConfigOrDie(cfg)
	store := fleet.Store{Dynamic: dynamic.NewForConfigOrDie(cfg)}
	r := &fleet.Reconciler{Store: store, Hub: hub, Namespace: fleet.DefaultNamespace, Driver: noDriver{t},
		Recorder: events.NewFakeRecorder(100), Identity: "e2e/1/1", LeaseDuration: 5 * time.Second, Poll: 100 * time.Millisecond}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	defer func() { stop(); <-done }()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}}); err != nil {
			t.Logf("reconcile as %s: %v", user, err)
		}
		got, err := store.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range got.Status.Conditions {
			if c.Type == v1alpha1.FleetConditionProgressing {
				return &got.Status.Conditions[i]
			}
		}
	}
	return nil
}

// noDriver fails the test if a paused FleetUpgrade starts a member run.
type noDriver struct{ t *testing.T }

func (d noDriver) Upgrade(context.Context, fleet.Cluster, *v1alpha1.FleetUpgrade) error {
	d.t.Error("a paused FleetUpgrade started a member upgrade")
	return nil
}

func (d noDriver) Rollback(context.Context, fleet.Cluster, string) error {
	d.t.Error("a paused FleetUpgrade started a member rollback")
	return nil
}
