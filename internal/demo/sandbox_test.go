package demo

import (
	"context"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestMain starts one sandbox for the package's integration tests (none under -short).
func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m)) }

// sandboxClient is a client of the package's sandbox.
func sandboxClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(sandboxtest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countBySet counts pods carrying LabelSet=set, and how many of them are in phase.
func countBySet(ctx context.Context, t *testing.T, c kubernetes.Interface, set string) (all int, phases map[string]int) {
	t.Helper()
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: LabelSet + "=" + set})
	if err != nil {
		t.Fatal(err)
	}
	phases = map[string]int{}
	for _, p := range pods.Items {
		phases[string(p.Status.Phase)]++
	}
	return len(pods.Items), phases
}

func TestApplyWaitReadyOnSandbox(t *testing.T) {
	c := sandboxClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	p, err := Build(Options{Revision: "1-23-2", Tag: "default", Namespaces: 4, Workloads: 20, Prefix: "it"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := Apply(ctx, c, p); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, c, p); err != nil {
		t.Fatalf("second Apply (must be idempotent): %v", err)
	}
	if err := WaitReady(ctx, c, p); err != nil {
		t.Fatal(err)
	}
	t.Logf("20 workloads applied and ready in %s", time.Since(start).Round(time.Millisecond))

	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := p.Expect()
	sel := metav1.ListOptions{LabelSelector: LabelSet + "=it"}
	deps, _ := c.AppsV1().Deployments("").List(ctx, sel)
	sts, _ := c.AppsV1().StatefulSets("").List(ctx, sel)
	dss, _ := c.AppsV1().DaemonSets("").List(ctx, sel)
	jobs, _ := c.BatchV1().Jobs("").List(ctx, sel)
	cjs, _ := c.BatchV1().CronJobs("").List(ctx, sel)
	got := map[Kind]int{KindDeployment: len(deps.Items), KindStatefulSet: len(sts.Items), KindDaemonSet: len(dss.Items),
		KindJob: len(jobs.Items), KindCronJob: len(cjs.Items)}
	for k, n := range got {
		if n != e.Kinds[k] {
			t.Errorf("%s: %d in the cluster, plan has %d", k, n, e.Kinds[k])
		}
	}
	all, phases := countBySet(ctx, t, c, "it")
	if want := e.Pods(len(nodes.Items)); all != want {
		t.Errorf("%d pods (%v), want %d on %d nodes", all, phases, want, len(nodes.Items))
	}
	completing := 0
	for _, w := range e.Workloads {
		if w.Completes {
			completing += w.Pods
		}
	}
	if phases["Succeeded"] != completing {
		t.Errorf("%d pods Succeeded, want the %d Job pods (kwok's pod-complete stage)", phases["Succeeded"], completing)
	}
	for _, w := range p.Workloads {
		if w.PreInjectedImage == "" {
			continue
		}
		pod, err := c.CoreV1().Pods(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := pod.Spec.Containers[len(pod.Spec.Containers)-1].Image; img != w.PreInjectedImage || pod.Annotations[istio.AnnotationSidecarStatus] == "" {
			t.Errorf("stale pod %s: proxy image %s, status %q", w.Ref(), img, pod.Annotations[istio.AnnotationSidecarStatus])
		}
	}
}

func TestSeedScaleOnSandbox(t *testing.T) {
	c := sandboxClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	opts := ScaleOptions{Prefix: "it-scale", Namespaces: 5, Workloads: 50, Pods: 10, Revision: "1-23-2"}
	rep, err := SeedScale(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	want := opts.Workloads * opts.Pods
	sel := metav1.ListOptions{LabelSelector: LabelSet + "=" + opts.Prefix}

	// Wait until kube-controller-manager reports every Deployment available, then require that
	// nothing moves for 30 s: no pod created or deleted, no ReplicaSet added.
	for {
		deps, err := c.AppsV1().Deployments("").List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for i := range deps.Items {
			if deploymentPending(&deps.Items[i]) == "" {
				ready++
			}
		}
		if ready == opts.Workloads {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d/%d deployments available", ready, opts.Workloads)
		}
		time.Sleep(time.Second)
	}
	pods, err := c.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]bool{}
	for _, p := range pods.Items {
		uids[string(p.UID)] = true
	}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(3 * time.Second) {
		pods, err := c.CoreV1().Pods("").List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for _, p := range pods.Items {
			if !uids[string(p.UID)] || p.DeletionTimestamp != nil || p.Annotations[istio.AnnotationSidecarStatus] == "" {
				changed++
			}
		}
		rss, err := c.AppsV1().ReplicaSets("").List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != want || changed != 0 || len(rss.Items) != opts.Workloads {
			t.Fatalf("not stable: %d pods (want %d), %d new or deleting, %d ReplicaSets (want %d)",
				len(pods.Items), want, changed, len(rss.Items), opts.Workloads)
		}
	}
	if _, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, holdPolicyName(opts.Prefix), metav1.GetOptions{}); err == nil {
		t.Errorf("admission policy %s left behind", holdPolicyName(opts.Prefix))
	}
	if _, err := SeedScale(ctx, c, opts); err != nil {
		t.Errorf("second SeedScale (must be idempotent): %v", err)
	}
	if all, _ := countBySet(ctx, t, c, opts.Prefix); all != want {
		t.Errorf("after a second SeedScale: %d pods, want %d", all, want)
	}
}
