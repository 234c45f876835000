package upgrade

import (
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// TestRollbackOnFailedRollout plants a workload whose new pods can never be
// scheduled (its node is cordoned after it started). The run moves wave 1,
// halts at the failed rollout in wave 2, and the automatic rollback restores
// every moved workload, the failed one included, to 1-23-2.
func TestRollbackOnFailedRollout(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "failing", Namespaces: 4, Workloads: 40})
	nss := p.NamespaceNames()
	broken := plantUnschedulable(t, e, "failing-broken")
	nss = append(nss, broken.Namespace)

	mu := spec("failing", nss, []v1alpha1.WaveSize{{Count: 5}, {Percent: 100}}, 5)
	mu.Spec.Strategy.Last = []string{broken.Namespace}
	mu = e.start(t, mu, nil)
	_, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	if !errors.Is(err, upgrade.ErrRolledBack) {
		t.Fatalf("run returned %v, want a rollback", err)
	}
	got, err := e.store().Get(t.Context(), mu.Name)
	if err != nil {
		t.Fatal(err)
	}
	st := got.Status
	if st.Phase != v1alpha1.PhaseRolledBack || !strings.Contains(st.Message, "broken") {
		t.Errorf("phase %s message %q; want RolledBack naming the broken workload", st.Phase, st.Message)
	}
	var brokenStatus *v1alpha1.WorkloadStatus
	moved := 0
	for i, w := range st.Workloads {
		if w.Name == broken.Name {
			brokenStatus = &st.Workloads[i]
		}
		if w.Outcome != "" {
			moved++
			if w.Outcome != v1alpha1.OutcomeRolledBack {
				t.Errorf("%s ended %s (%s), want RolledBack", w.Ref(), w.Outcome, w.Message)
			}
		}
	}
	if brokenStatus == nil || !strings.Contains(brokenStatus.Message, "rolled back after") {
		t.Errorf("the broken workload's status does not explain its failure: %+v", brokenStatus)
	}
	if moved < 6 {
		t.Errorf("only %d workloads were touched; want wave 1 (5) plus the failing one at least", moved)
	}
	want := len(p.Workloads) + 1
	if imgs := e.waitPodsSettled(t, nss, want); imgs[fromImage] != want {
		t.Errorf("pods by proxy image after rollback: %s; want all %d on %s", describe(imgs), want, fromImage)
	}
	for _, ns := range p.NamespaceNames() {
		n, err := e.kube.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := n.Labels[istio.LabelRev]; ok && v != fromRev {
			t.Errorf("namespace %s still labelled %s=%s after rollback", ns, istio.LabelRev, v)
		}
	}
	d, err := e.kube.AppsV1().Deployments(broken.Namespace).Get(t.Context(), broken.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Labels[istio.LabelRev] != fromRev || d.Labels["meshroll.io/upgrade"] != "" {
		t.Errorf("broken Deployment not restored: template rev %q, upgrade label %q", d.Spec.Template.Labels[istio.LabelRev], d.Labels["meshroll.io/upgrade"])
	}
}

// plantUnschedulable runs a one-replica Deployment pinned to one node, then
// cordons that node: the pod keeps running, but any restart leaves the new pod
// Pending, and the two-second progress deadline fails the rollout.
func plantUnschedulable(t *testing.T, e *env, ns string) *appsv1.Deployment {
	t.Helper()
	ctx := t.Context()
	nodes, err := e.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("list nodes: %v (%d)", err, len(nodes.Items))
	}
	node := nodes.Items[len(nodes.Items)-1].Name
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "broken", istio.LabelRev: fromRev}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To[int32](1),
			ProgressDeadlineSeconds: ptr.To[int32](3),
			Selector:                &metav1.LabelSelector{MatchLabels: map[string]string{"app": "broken"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/hostname": node},
					Containers:   []corev1.Container{{Name: "app", Image: demo.PauseImage}},
					Tolerations:  []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				},
			},
		},
	}
	if _, err := e.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "broken", metav1.GetOptions{})
		if err == nil && got.Status.AvailableReplicas == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("planted Deployment never became available: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cordon := func(v bool) error {
		_, err := e.kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(`{"spec":{"unschedulable":`+map[bool]string{true: "true", false: "false"}[v]+`}}`), metav1.PatchOptions{})
		return err
	}
	if err := cordon(true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cordon(false) })
	return d
}

// TestRollbackOnPrometheusGate feeds a real Prometheus with Istio request
// metrics in which 20% of requests fail: the error-rate gate after wave 1
// fails with the measured ratio as evidence, and the run rolls wave 1 back.
func TestRollbackOnPrometheusGate(t *testing.T) {
	e := newEnv(t)
	exp := gatetest.StartExporter(t)
	prom := gatetest.StartPrometheus(t, exp.Address())
	g, err := gate.Preset(gate.PresetErrorRate, gate.PresetParams{Window: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := e.seed(t, demo.MigrationOptions{Prefix: "gated", Namespaces: 2, Workloads: 12})
	nss := p.NamespaceNames()
	// Steady traffic in which one request in five fails, for as long as
	// the test runs, so rate() over the gate's window sees it.
	exp.Serve(nss[0], "app-0000", 503, 0)
	traffic := time.NewTicker(100 * time.Millisecond)
	t.Cleanup(traffic.Stop)
	go func() {
		for range traffic.C {
			exp.Serve(nss[0], "app-0000", 200, 40)
			exp.Serve(nss[0], "app-0000", 503, 10)
		}
	}()
	prom.WaitForSeries(t, g.Prometheus.Query)

	runner, err := gate.NewRunner(prom.URL())
	if err != nil {
		t.Fatal(err)
	}
	mu := spec("gated", nss, []v1alpha1.WaveSize{{Count: 4}, {Percent: 100}}, 4)
	mu.Spec.Gates = []v1alpha1.Gate{g}
	mu.Spec.PrometheusURL = prom.URL()
	mu = e.start(t, mu, runner.Validate)
	_, err = e.engine(t, runner, nil).Run(t.Context(), mu.Name)
	if !errors.Is(err, upgrade.ErrRolledBack) {
		t.Fatalf("run returned %v, want a rollback", err)
	}
	got, err := e.store().Get(t.Context(), mu.Name)
	if err != nil {
		t.Fatal(err)
	}
	var failed *v1alpha1.GateResult
	for i, r := range got.Status.Gates {
		if r.Name == g.Name && !r.Passed {
			failed = &got.Status.Gates[i]
		}
	}
	if failed == nil || failed.Wave != 1 || !strings.Contains(failed.Evidence, "0.2") {
		t.Fatalf("no failed %s verdict after wave 1 with the measured ratio: %+v", g.Name, got.Status.Gates)
	}
	t.Logf("gate evidence: %s", failed.Evidence)
	if c := got.Status.Counts; c.RolledBack != 4 || c.Succeeded != 0 {
		t.Errorf("counts %+v; want the 4 workloads of wave 1 rolled back and nothing left moved", c)
	}
	if imgs := e.waitPodsSettled(t, nss, len(p.Workloads)); imgs[fromImage] != len(p.Workloads) {
		t.Errorf("pods by proxy image after rollback: %s; want all on %s", describe(imgs), fromImage)
	}
}
