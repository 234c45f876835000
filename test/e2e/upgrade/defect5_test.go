package upgrade

// Tests named for the sub-cases of issue 9 defect 5 ("one transient error
// rolls back the whole mesh"); each failed on 5c5741d.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/internal/webhook"
)

// proxied points an engine at the cluster through fp.
func proxied(t *testing.T, eng *upgrade.Engine, fp *faultProxy) *upgrade.Engine {
	t.Helper()
	kube, err := kubernetes.NewForConfig(fp.config())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(fp.config())
	if err != nil {
		t.Fatal(err)
	}
	eng.Kube, eng.Store = kube, upgrade.Store{Dynamic: dyn}
	tuneForFaults(eng)
	return eng
}

// wantSucceeded fails the test unless the run succeeded with want workloads
// moved, each Deployment in nss restarted exactly once, and every pod on the
// new proxy.
func (e *env) wantSucceeded(t *testing.T, out *v1alpha1.MeshUpgrade, err error, nss []string, want, pods int) {
	t.Helper()
	if err != nil || out.Status.Phase != v1alpha1.PhaseSucceeded || out.Status.Counts.Succeeded != want {
		phase, msg := v1alpha1.Phase(""), ""
		if out != nil {
			phase, msg = out.Status.Phase, out.Status.Message
		}
		t.Fatalf("run: %v; phase %s with %d moved (want Succeeded with %d): %s", err, phase, out.Status.Counts.Succeeded, want, msg)
	}
	rss := e.replicaSets(t, nss)
	for _, ns := range nss {
		l, err := e.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l.Items {
			if n := rss[ns+"/"+d.Name]; n != 2 {
				t.Errorf("Deployment %s/%s has %d ReplicaSets, want 2 (restarted exactly once)", ns, d.Name, n)
			}
		}
	}
	if imgs := e.waitPodsSettled(t, nss, pods); imgs[toImage] != pods {
		t.Errorf("pods by proxy image: %s; want all %d on %s", describe(imgs), pods, toImage)
	}
}

// TestDefect5PatchErrorsRetried: a 500, a 503, a 429 without Retry-After
// and a PATCH whose answer is lost after it landed (a timeout) each used to
// fail their workload and roll back the whole mesh. They are retried; the
// lost answer is re-read, not repeated as a second restart.
func TestDefect5PatchErrorsRetried(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d5p", Namespaces: 2, Workloads: 8})
	nss := p.NamespaceNames()
	fp := startFaultProxy(t, faultMix{}, 1)
	podNS := p.Namespaces[1].Name
	var names []string
	for _, w := range p.Workloads {
		if w.Namespace == podNS {
			names = append(names, w.Name)
		}
	}
	rules := map[string]*faultRule{}
	for i, fault := range []string{"500", "503", "429", "drop"} {
		rules[fault] = fp.addRule(&faultRule{Match: isPatch("deployments", names[i]), Fault: fault, Times: 1})
	}
	mu := e.start(t, spec("d5-patch", nss, []v1alpha1.WaveSize{{Percent: 100}}, 4), nil)
	out, err := proxied(t, e.engine(t, nil, nil), fp).Run(t.Context(), mu.Name)
	for fault, r := range rules {
		if r.hits.Load() != 1 {
			t.Errorf("fault %s injected %d times, want 1", fault, r.hits.Load())
		}
	}
	e.wantSucceeded(t, out, err, nss, 8, 8)
}

// TestDefect5NamespaceRelabelRetried: one failed namespace relabel used to
// fail the workload that needed it and roll back the mesh.
func TestDefect5NamespaceRelabelRetried(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d5n", Namespaces: 2, Workloads: 4})
	nss := p.NamespaceNames()
	fp := startFaultProxy(t, faultMix{}, 2)
	relabel := fp.addRule(&faultRule{Match: isPatch("namespaces", p.Namespaces[0].Name), Fault: "500", Times: 2})
	mu := e.start(t, spec("d5-relabel", nss, []v1alpha1.WaveSize{{Percent: 100}}, 2), nil)
	out, err := proxied(t, e.engine(t, nil, nil), fp).Run(t.Context(), mu.Name)
	if relabel.hits.Load() != 2 {
		t.Errorf("relabel failed %d times, want 2", relabel.hits.Load())
	}
	e.wantSucceeded(t, out, err, nss, 4, 4)
}

// TestDefect5WorkloadDeletedMidRun: a workload its owner deletes after the
// plan was frozen, or while its rollout is being waited on, is skipped; it
// used to fail the wave and roll back the whole mesh.
func TestDefect5WorkloadDeletedMidRun(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d5d", Namespaces: 2, Workloads: 8})
	nss := p.NamespaceNames()
	podNS := p.Namespaces[1].Name
	before, during := p.Workloads[1].Name, p.Workloads[3].Name // both in podNS
	fp := startFaultProxy(t, faultMix{}, 3)
	deleted := fp.addRule(&faultRule{Match: isPatch("deployments", during), Times: 1, After: func() {
		if err := e.kube.AppsV1().Deployments(podNS).Delete(t.Context(), during, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete %s: %v", during, err)
		}
	}})
	mu := e.start(t, spec("d5-deleted", nss, []v1alpha1.WaveSize{{Percent: 100}}, 2), nil)
	if err := e.kube.AppsV1().Deployments(podNS).Delete(t.Context(), before, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := proxied(t, e.engine(t, nil, nil), fp).Run(t.Context(), mu.Name)
	if deleted.hits.Load() != 1 {
		t.Fatalf("the deletion during the rollout never happened")
	}
	for _, w := range out.Status.Workloads {
		gone := w.Name == before || w.Name == during
		if gone != (string(w.Outcome) == "Skipped") || (gone && !strings.Contains(w.Message, "deleted")) {
			t.Errorf("%s: outcome %s (%s); want Skipped with a reason only for the deleted workloads", w.Ref(), w.Outcome, w.Message)
		}
	}
	e.wantSucceeded(t, out, err, nss, 6, 6)
}

// TestDefect5PrometheusErrorIsNotAFailedGate: a Prometheus that answers
// 503 twice used to be recorded as a failed gate after the first wave and
// roll back the mesh. The measurement is retried and the gates pass.
func TestDefect5PrometheusErrorIsNotAFailedGate(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d5g", Namespaces: 2, Workloads: 4})
	nss := p.NamespaceNames()
	var queries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if queries.Add(1) <= 2 {
			http.Error(w, "injected: prometheus unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"0"]}]}}`, time.Now().Unix())
	}))
	t.Cleanup(srv.Close)
	// Two waves, so that a gate runs between them even where the last
	// wave went ungated (defect 1).
	mu := spec("d5-prometheus", nss, []v1alpha1.WaveSize{{Count: 2}, {Percent: 100}}, 4)
	mu.Spec.Gates = []v1alpha1.Gate{{Name: "error-rate", Prometheus: &v1alpha1.PrometheusGate{Query: "sum(rate(istio_requests_total[1m]))", Op: "<", Threshold: "1"}}}
	mu.Spec.PrometheusURL = srv.URL
	mu = e.start(t, mu, nil)
	runner, err := gate.NewRunner(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	eng := e.engine(t, runner, nil)
	tuneForFaults(eng)
	out, err := eng.Run(t.Context(), mu.Name)
	for _, g := range out.Status.Gates {
		if !g.Passed {
			t.Errorf("gate verdict %s failed: %s", g.Name, g.Evidence)
		}
	}
	if queries.Load() < 3 {
		t.Errorf("%d queries, want the 2 failed ones and one that answered", queries.Load())
	}
	e.wantSucceeded(t, out, err, nss, 4, 4)
}

// TestDefect5UnmovableSkippedBeforeWrite: a paused Deployment, a
// StatefulSet with a partition and an OnDelete DaemonSet used to be
// restarted (OnDelete DaemonSets were always called restartable), roll out
// nothing, time out and roll back the mesh. They are reported before any
// write; a Deployment paused after the plan was frozen is skipped at the
// moment of its write, with no write.
func TestDefect5UnmovableSkippedBeforeWrite(t *testing.T) {
	e := newEnv(t)
	plan, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "d5u", Namespaces: 2, Workloads: 4, Revision: fromRev})
	if err != nil {
		t.Fatal(err)
	}
	ns := plan.Namespaces[0].Name // labelled istio.io/rev: everything in it is injected
	extra := []demo.WorkloadSpec{
		{Namespace: ns, Name: "paused", Kind: demo.KindDeployment, Replicas: 1},
		{Namespace: ns, Name: "paused-late", Kind: demo.KindDeployment, Replicas: 1},
		{Namespace: ns, Name: "partitioned", Kind: demo.KindStatefulSet, Replicas: 2},
		{Namespace: ns, Name: "agent", Kind: demo.KindDaemonSet},
	}
	for _, w := range extra {
		w.Set, w.PodLabels = "d5u", map[string]string{"app": w.Name}
		plan.Workloads = append(plan.Workloads, w)
	}
	e.applyPlan(t, plan)
	apps := e.kube.AppsV1()
	mustPatch := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	merge := types.MergePatchType
	_, err = apps.Deployments(ns).Patch(t.Context(), "paused", merge, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{})
	mustPatch(err)
	_, err = apps.StatefulSets(ns).Patch(t.Context(), "partitioned", merge, []byte(`{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}}}`), metav1.PatchOptions{})
	mustPatch(err)
	_, err = apps.DaemonSets(ns).Patch(t.Context(), "agent", merge, []byte(`{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}`), metav1.PatchOptions{})
	mustPatch(err)

	mu := spec("d5-unmovable", []string{ns}, []v1alpha1.WaveSize{{Percent: 100}}, 2)
	mu.Spec.Strategy.RolloutTimeout = metav1.Duration{Duration: 20 * time.Second}
	mu = e.start(t, mu, nil)
	skipped := map[string]string{}
	for _, s := range mu.Status.Skipped {
		skipped[s.Name] = s.Reason
	}
	for name, why := range map[string]string{"paused": "paused", "partitioned": "partition 1", "agent": "OnDelete"} {
		if !strings.Contains(skipped[name], why) {
			t.Errorf("%s not reported before any write with a reason containing %q (skipped: %v)", name, why, skipped)
		}
	}
	_, err = apps.Deployments(ns).Patch(t.Context(), "paused-late", merge, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{})
	mustPatch(err)
	out, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	if err != nil || out.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("run: %v; phase %s: %s", err, out.Status.Phase, out.Status.Message)
	}
	for _, w := range out.Status.Workloads {
		if late := w.Name == "paused-late"; late != (string(w.Outcome) == "Skipped") || (late && !strings.Contains(w.Message, "paused")) {
			t.Errorf("%s: outcome %s (%s); want Skipped (paused) only for paused-late", w.Ref(), w.Outcome, w.Message)
		}
	}
	if got := e.labelled(t, ns, mu.Name); len(got) != 2 {
		t.Errorf("Deployments written by the upgrade: %v, want the 2 movable ones only", got)
	}
	sts, err := apps.StatefulSets(ns).Get(t.Context(), "partitioned", metav1.GetOptions{})
	mustPatch(err)
	ds, err := apps.DaemonSets(ns).Get(t.Context(), "agent", metav1.GetOptions{})
	mustPatch(err)
	if sts.Labels[webhook.LabelUpgrade] != "" || ds.Labels[webhook.LabelUpgrade] != "" {
		t.Errorf("the upgrade wrote to the partitioned StatefulSet or the OnDelete DaemonSet")
	}
}

// TestDefect5RolloutDeadlineFromWorkload: a Deployment of 6 replicas that
// rolls one replica at a time (each available after minReadySeconds 2)
// takes longer in all than the run's rolloutTimeout of 8s but never stops
// making progress. The fixed bound used to fail it whatever its replica
// count; the deadline is now on progress, as Kubernetes' own
// progressDeadlineSeconds is.
func TestDefect5RolloutDeadlineFromWorkload(t *testing.T) {
	e := newEnv(t)
	plan, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "d5r", Namespaces: 2, Workloads: 2, Revision: fromRev})
	if err != nil {
		t.Fatal(err)
	}
	ns := plan.Namespaces[0].Name
	plan.Workloads = append(plan.Workloads, demo.WorkloadSpec{Namespace: ns, Name: "big", Kind: demo.KindDeployment, Replicas: 6, Set: "d5r", PodLabels: map[string]string{"app": "big"}})
	e.applyPlan(t, plan)
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	d, err := e.kube.AppsV1().Deployments(ns).Get(t.Context(), "big", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.MinReadySeconds = 2
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &zero}}
	if _, err := e.kube.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mu := spec("d5-deadline", []string{ns}, []v1alpha1.WaveSize{{Percent: 100}}, 2)
	mu.Spec.Strategy.RolloutTimeout = metav1.Duration{Duration: 8 * time.Second}
	mu = e.start(t, mu, nil)
	out, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	for _, w := range out.Status.Workloads {
		if w.Name == "big" {
			t.Logf("big rolled out in %s", time.Duration(w.RolloutMillis)*time.Millisecond)
			if w.RolloutMillis < 8000 && w.Outcome == v1alpha1.OutcomeSucceeded {
				t.Errorf("big rolled out in %dms, under the 8s bound: the test proves nothing", w.RolloutMillis)
			}
		}
	}
	e.wantSucceeded(t, out, err, []string{ns}, 2, 7)
}

// TestDefect5FailureBudget: with maxFailedWorkloads 1, one workload whose
// rollout cannot progress (a ResourceQuota forbids its surge pod; its own
// progressDeadlineSeconds of 5 declares the failure; no rolloutTimeout set)
// is put back on the old revision and the run goes on; it used to roll back
// the whole mesh.
func TestDefect5FailureBudget(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d5b", Namespaces: 2, Workloads: 6})
	nss := p.NamespaceNames()
	// One workload alone in a namespace labelled for the old revision.
	sp := e.seed(t, demo.MigrationOptions{Prefix: "d5b-stuck", Namespaces: 2, Workloads: 1})
	stuckNS, stuckName := sp.Workloads[0].Namespace, sp.Workloads[0].Name
	if _, err := e.kube.AppsV1().Deployments(stuckNS).Patch(t.Context(), stuckName, types.MergePatchType, []byte(`{"spec":{"progressDeadlineSeconds":5}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "one-pod", Namespace: stuckNS},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}}}
	if _, err := e.kube.CoreV1().ResourceQuotas(stuckNS).Create(t.Context(), quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		q, err := e.kube.CoreV1().ResourceQuotas(stuckNS).Get(t.Context(), "one-pod", metav1.GetOptions{})
		if err == nil && q.Status.Used.Pods().Value() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("quota never counted the pod: %v", err)
		}
	}
	all := append(append([]string{}, nss...), stuckNS)
	mu := spec("d5-budget", all, []v1alpha1.WaveSize{{Percent: 100}}, 4)
	mu.Spec.Strategy.RolloutTimeout = metav1.Duration{}
	withBudget(mu, 1)
	mu = e.start(t, mu, nil)
	out, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	if err != nil || out.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("run: %v; phase %s: %s", err, out.Status.Phase, out.Status.Message)
	}
	for _, w := range out.Status.Workloads {
		isStuck := w.Name == stuckName && w.Namespace == stuckNS
		switch {
		case isStuck && (w.Outcome != v1alpha1.OutcomeRolledBack || !strings.Contains(w.Message, "progress deadline exceeded")):
			t.Errorf("%s: outcome %s (%s); want RolledBack after its progress deadline", w.Ref(), w.Outcome, w.Message)
		case !isStuck && w.Outcome != v1alpha1.OutcomeSucceeded:
			t.Errorf("%s: outcome %s (%s); want Succeeded", w.Ref(), w.Outcome, w.Message)
		}
	}
	if !strings.Contains(out.Status.Message, "1 failed within the budget") {
		t.Errorf("final message %q does not report the failed workload", out.Status.Message)
	}
	if got := e.labelled(t, stuckNS, mu.Name); len(got) != 0 {
		t.Errorf("the failed workload still carries the upgrade's label: %v", got)
	}
	if imgs := e.waitPodsSettled(t, []string{stuckNS}, 1); imgs[fromImage] != 1 {
		t.Errorf("failed workload's pods: %s; want its 1 pod on %s", describe(imgs), fromImage)
	}
	e.wantSucceeded(t, out, nil, nss, 6, 6)
}

// applyPlan creates a hand-made plan and waits until every pod runs.
func (e *env) applyPlan(t *testing.T, plan *demo.Plan) {
	t.Helper()
	if err := demo.Apply(t.Context(), e.kube, plan); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := demo.WaitReady(ctx, e.kube, plan); err != nil {
		t.Fatal(err)
	}
}
