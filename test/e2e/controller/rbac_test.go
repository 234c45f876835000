package controller

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestMissingPermissionIsNamed: the controller runs as a ServiceAccount
// (impersonated) whose ClusterRole is controller.Rules with one verb the
// moves need removed (patch on apps/deployments). The MeshUpgrade shows a
// Stalled condition and a Warning Event naming exactly that permission, no
// Deployment is restarted and the controller keeps running.
func TestMissingPermissionIsNamed(t *testing.T) {
	e := newEnv(t)
	const ns, sa = "meshroll-limited", "meshroll-limited"
	p := e.seed(t, demo.MigrationOptions{Prefix: "rbac", Namespaces: 2, Workloads: 4})
	nss := p.NamespaceNames()
	before := e.replicaSets(t, nss)

	if _, err := e.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := e.kube.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, cr := range controller.Rules {
		r := *cr.DeepCopy()
		if slices.Contains(r.APIGroups, "apps") && slices.Contains(r.Resources, "deployments") {
			// Deployments alone lose patch; the rule's other resources keep it.
			d := *r.DeepCopy()
			d.Resources = []string{"deployments"}
			d.Verbs = slices.DeleteFunc(d.Verbs, func(v string) bool { return v == "patch" })
			rules = append(rules, d)
			r.Resources = slices.DeleteFunc(r.Resources, func(s string) bool { return s == "deployments" })
		}
		if len(r.Resources) > 0 {
			rules = append(rules, r)
		}
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: rules}
	if _, err := e.kube.RbacV1().ClusterRoles().Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}
	if _, err := e.kube.RbacV1().ClusterRoleBindings().Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The controller's first preflight must see the role, not a moment
	// in which the authorizer knows nothing of it yet.
	sandboxtest.WaitGranted(t, e.kube, "system:serviceaccount:"+ns+":"+sa, role)
	proc := e.startController(t, "limited", 8*time.Second, "", "--leader-election-namespace", ns,
		"--as", "system:serviceaccount:"+ns+":"+sa)

	mu := &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac"},
		Spec: v1alpha1.MeshUpgradeSpec{From: fromRev, To: toRev, Version: toVersion,
			Selection: v1alpha1.Selection{Namespaces: nss},
			Strategy:  v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Percent: 100}}, Parallelism: 2}},
	}
	e.createUpgrade(t, mu)
	const want = "patch apps/deployments"
	stalled := e.awaitStalled(t, proc, mu.Name, 3*time.Minute)
	if stalled.Reason != controller.ReasonPermissionMissing || !strings.Contains(stalled.Message, want) {
		t.Errorf("Stalled = %s: %s; want reason %s naming %q", stalled.Reason, stalled.Message, controller.ReasonPermissionMissing, want)
	}
	if strings.Count(stalled.Message, ", ") > 0 {
		t.Errorf("Stalled names more than the one missing permission: %s", stalled.Message)
	}
	t.Logf("Stalled: %s: %s", stalled.Reason, stalled.Message)
	// Events are sent by the recorder in the background: give it time.
	found := false
	for end := time.Now().Add(30 * time.Second); !found && time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		evs, err := e.kube.EventsV1().Events(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			found = found || (ev.Regarding.Name == mu.Name && ev.Reason == controller.ReasonPermissionMissing && strings.Contains(ev.Note, want))
		}
	}
	if !found {
		t.Errorf("no %s Event about MeshUpgrade %s naming %q", controller.ReasonPermissionMissing, mu.Name, want)
	}
	if after := e.replicaSets(t, nss); !maps.Equal(before, after) {
		t.Errorf("ReplicaSets changed while stalled: before %v, after %v (a workload was written)", before, after)
	}
	if err := proc.crashed(); err != nil {
		t.Error(err)
	}
}
