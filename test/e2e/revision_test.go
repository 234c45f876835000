package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/manifest"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// TestRevisionLifecycle installs its own revision, rm-1-25-1, resuming an
// install killed halfway, then removes it again, and leaves the cluster as it
// found it (CRDs aside: they are shared). Go runs the package's files in name
// order, so it runs before TestSeededMesh, on a cluster without Istio; it
// also works beside other revisions.
func TestRevisionLifecycle(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	ctx := t.Context()
	const version, rev = "1.25.1", "rm-1-25-1"
	ns := istio.SystemNamespace
	render := istio.RenderOptions{Version: version, Revision: rev}
	istiodGone := func(t *testing.T) {
		t.Helper()
		if _, err := e.kube.AppsV1().Deployments(ns).Get(ctx, controlplane.IstiodName(rev), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("istiod of %s exists (err %v), want none", rev, err)
		}
	}

	t.Run("install killed after the CRDs and the intent record", func(t *testing.T) {
		objs, err := istio.Render(ctx, render)
		if err != nil {
			t.Fatal(err)
		}
		crds, rest := manifest.Split(objs)
		a := controlplane.NewApplier(e.dyn, e.kube.Discovery(), false)
		if _, err := a.Apply(ctx, crds); err != nil {
			t.Fatal(err)
		}
		// Install creates the namespace before its record (this test may
		// run first, on an empty cluster).
		_, err = e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		rec := controlplane.Record{Revision: rev, Version: version, State: controlplane.StateInstalling}
		for _, o := range rest {
			if controlplane.Owned(o, rev) {
				rec.Objects = append(rec.Objects, controlplane.RefOf(o))
			}
		}
		if err := controlplane.WriteRecord(ctx, a, ns, rec); err != nil {
			t.Fatal(err)
		}
		istiodGone(t)
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		res, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{Render: render, DryRun: true})
		if err != nil {
			t.Fatalf("dry-run install: %v", err)
		}
		if len(res.Changes) == 0 {
			t.Error("dry run planned no changes")
		}
		istiodGone(t)
		got, found, err := controlplane.ReadRecord(ctx, e.kube, ns, rev)
		if err != nil || !found || got.State != controlplane.StateInstalling {
			t.Errorf("record after dry run = %+v found=%t err=%v, want the intent record untouched", got, found, err)
		}
	})

	t.Run("install resumes and completes", func(t *testing.T) {
		start := time.Now()
		res, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{Render: render})
		if err != nil {
			t.Fatalf("install: %v", err)
		}
		t.Logf("resumed install of %s in %s (%s)", rev, time.Since(start).Round(time.Millisecond), controlplane.Summarize(res.Changes))
		rec, found, err := controlplane.ReadRecord(ctx, e.kube, ns, rev)
		if err != nil || !found {
			t.Fatalf("record: found=%t err=%v", found, err)
		}
		if rec.State != controlplane.StateInstalled || rec.Version != version {
			t.Errorf("record state %q version %q", rec.State, rec.Version)
		}
		for _, o := range rec.Objects {
			if o.Kind == "CustomResourceDefinition" || o.Kind == "Namespace" || o.Name == "istio-reader-service-account" {
				t.Errorf("record tracks shared object %s", o)
			}
		}
		if _, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, controlplane.InjectorName(rev), metav1.GetOptions{}); err != nil {
			t.Errorf("injector webhook: %v", err)
		}
	})

	t.Run("second install changes nothing", func(t *testing.T) {
		res, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{Render: render})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Changes {
			if c.Action != controlplane.Unchanged {
				t.Errorf("second install changed %s", c)
			}
		}
	})

	const appNS = "rm-app"
	t.Run("remove refuses while a pod and a namespace use it", func(t *testing.T) {
		_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: appNS, Labels: map[string]string{istio.LabelRev: rev}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: appNS},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
		}
		if _, err := e.kube.CoreV1().Pods(appNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = controlplane.Remove(ctx, e.controlplane(), e.snapshot(t), controlplane.RemoveOptions{Revision: rev})
		var inUse *controlplane.InUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("remove err = %v, want *InUseError", err)
		}
		var got []string
		for _, r := range inUse.Referrers {
			got = append(got, string(r.Kind)+" "+r.Object)
		}
		want := "pods Pod " + appNS + "/probe|namespace Namespace " + appNS
		if strings.Join(got, "|") != want {
			t.Errorf("referrers = %q, want %q", got, want)
		}
		if _, err := e.kube.AppsV1().Deployments(ns).Get(ctx, controlplane.IstiodName(rev), metav1.GetOptions{}); err != nil {
			t.Errorf("refused remove changed istiod: %v", err)
		}
	})

	// TestDefectRemoveIgnoredVMsOnRevision's sandbox half: a VM whose agent
	// runs the revision keeps it, as a pod would.
	t.Run("defect: remove ignored a VM on the revision", func(t *testing.T) {
		we := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
			"metadata": map[string]any{"name": "vm-1", "namespace": appNS, "annotations": map[string]any{
				vmagent.AnnotationAgent: "", vmagent.AnnotationRevision: rev, vmagent.AnnotationVersion: version,
				vmagent.AnnotationDesiredRevision: rev, vmagent.AnnotationDesiredVersion: version}},
			"spec": map[string]any{"address": "10.1.0.1"},
		}}
		res := e.dyn.Resource(inventory.WorkloadEntryGVR).Namespace(appNS)
		if _, err := res.Create(ctx, we, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := res.Delete(context.WithoutCancel(ctx), "vm-1", metav1.DeleteOptions{}); err != nil {
				t.Errorf("delete WorkloadEntry: %v", err)
			}
		}()
		_, err := controlplane.Remove(ctx, e.controlplane(), e.snapshot(t), controlplane.RemoveOptions{Revision: rev})
		var inUse *controlplane.InUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("remove err = %v, want *InUseError", err)
		}
		found := false
		for _, r := range inUse.Referrers {
			found = found || (r.Kind == controlplane.ReferrerVM && r.Object == "WorkloadEntry "+appNS+"/vm-1")
		}
		if !found {
			t.Errorf("referrers = %v, want the VM WorkloadEntry %s/vm-1 among them", inUse.Referrers, appNS)
		}
	})

	t.Run("remove unknown revision", func(t *testing.T) {
		_, err := controlplane.Remove(ctx, e.controlplane(), e.snapshot(t), controlplane.RemoveOptions{Revision: "no-such-rev"})
		var notInstalled *controlplane.NotInstalledError
		if !errors.As(err, &notInstalled) {
			t.Errorf("remove no-such-rev err = %v, want *NotInstalledError", err)
		}
	})

	t.Run("remove deletes exactly the revision", func(t *testing.T) {
		zero := int64(0)
		if err := e.kube.CoreV1().Pods(appNS).Delete(ctx, "probe", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		// Unlabel rather than delete: a terminating namespace keeps its
		// label (and so its referrer) until the namespace controller is done.
		patch := []byte(`{"metadata":{"labels":{"` + istio.LabelRev + `":null}}}`)
		if _, err := e.kube.CoreV1().Namespaces().Patch(ctx, appNS, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), appNS, metav1.DeleteOptions{})
		})
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := e.kube.CoreV1().Pods(appNS).Get(ctx, "probe", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("pod did not go away: %v", err)
		}
		dry, err := controlplane.Remove(ctx, e.controlplane(), e.snapshot(t), controlplane.RemoveOptions{Revision: rev, DryRun: true})
		if err != nil {
			t.Fatalf("dry-run remove: %v", err)
		}
		if len(dry.Deleted) == 0 {
			t.Error("dry-run remove would delete nothing")
		}
		if _, err := e.kube.AppsV1().Deployments(ns).Get(ctx, controlplane.IstiodName(rev), metav1.GetOptions{}); err != nil {
			t.Fatalf("dry-run remove deleted istiod: %v", err)
		}
		start := time.Now()
		res, err := controlplane.Remove(ctx, e.controlplane(), e.snapshot(t), controlplane.RemoveOptions{Revision: rev})
		if err != nil {
			t.Fatalf("remove: %v", err)
		}
		t.Logf("removed %s in %s: %d objects deleted, %d already gone", rev, time.Since(start).Round(time.Millisecond), len(res.Deleted), len(res.Missing))
		istiodGone(t)
		if _, found, err := controlplane.ReadRecord(ctx, e.kube, ns, rev); found || err != nil {
			t.Errorf("record still there (found=%t err=%v)", found, err)
		}
		assertNoRevisionObjects(t, e, rev)
		// Not the snapshot: on an empty cluster (this test may run first)
		// inventory refuses to read a mesh without a control plane.
		revs, err := controlplane.ListRevisions(ctx, e.kube, ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revs {
			if r.Name == rev {
				t.Errorf("revision %s still listed", rev)
			}
		}
	})
}

// assertNoRevisionObjects checks that nothing labelled istio.io/rev=rev is left
// among the kinds an Istio install creates.
func assertNoRevisionObjects(t *testing.T, e *env, rev string) {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: istio.LabelRev + "=" + rev}
	count := func(kind string, n int, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("list %s: %v", kind, err)
		} else if n != 0 {
			t.Errorf("%d %s labelled %s=%s remain", n, kind, istio.LabelRev, rev)
		}
	}
	mw, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, sel)
	count("MutatingWebhookConfigurations", lenOr(mw, func() int { return len(mw.Items) }), err)
	vw, err := e.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, sel)
	count("ValidatingWebhookConfigurations", lenOr(vw, func() int { return len(vw.Items) }), err)
	d, err := e.kube.AppsV1().Deployments("").List(ctx, sel)
	count("Deployments", lenOr(d, func() int { return len(d.Items) }), err)
	cm, err := e.kube.CoreV1().ConfigMaps("").List(ctx, sel)
	count("ConfigMaps", lenOr(cm, func() int { return len(cm.Items) }), err)
	s, err := e.kube.CoreV1().Services("").List(ctx, sel)
	count("Services", lenOr(s, func() int { return len(s.Items) }), err)
	p, err := e.kube.CoreV1().Pods("").List(ctx, sel)
	count("Pods", lenOr(p, func() int { return len(p.Items) }), err)
	pdb, err := e.kube.PolicyV1().PodDisruptionBudgets("").List(ctx, sel)
	count("PodDisruptionBudgets", lenOr(pdb, func() int { return len(pdb.Items) }), err)
	hpa, err := e.kube.AutoscalingV2().HorizontalPodAutoscalers("").List(ctx, sel)
	count("HorizontalPodAutoscalers", lenOr(hpa, func() int { return len(hpa.Items) }), err)
	if err := controlplane.VerifyRemoved(ctx, e.kube, istio.SystemNamespace, rev); err != nil {
		t.Error(err)
	}
}

func lenOr[T any](list *T, n func() int) int {
	if list == nil {
		return 0
	}
	return n()
}
