package upgrade

// Tests named for defects 2, 3 and 6 of issue 9 ("Trustworthy upgrades");
// each failed on 5c5741d. They drive the real CLI (in process, or as a
// process where a kill is needed) so they ran unchanged on that commit.

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// installRevision installs revision rev of release version (a revision of
// the test's own, so removing it never touches the package's two).
func (e *env) installRevision(t *testing.T, version, rev string) {
	t.Helper()
	start := time.Now()
	if _, err := controlplane.Install(t.Context(), e.cp(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: version, Revision: rev}}); err != nil {
		t.Fatalf("install %s as %s: %v", version, rev, err)
	}
	t.Logf("installed %s as %s in %s", version, rev, time.Since(start).Round(time.Millisecond))
}

// seedOn creates a migration mesh whose pods start on rev.
func (e *env) seedOn(t *testing.T, o demo.MigrationOptions, rev string) *demo.Plan {
	t.Helper()
	o.Revision = rev
	p, err := demo.MigrationPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Apply(t.Context(), e.kube, p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := demo.WaitReady(ctx, e.kube, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// istiodExists reports whether revision rev's istiod Deployment exists.
func (e *env) istiodExists(t *testing.T, rev string) bool {
	t.Helper()
	_, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+rev, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// nsRev returns namespace ns's istio.io/rev label.
func (e *env) nsRev(t *testing.T, ns string) string {
	t.Helper()
	n, err := e.kube.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Labels[istio.LabelRev]
}

// TestDefect2RollbackRefused: `meshroll rollback` used to relabel namespaces
// to a revision the upgrade had pruned (their next pods start without a
// sidecar) and report RolledBack, and rolling back upgrade A after a later
// upgrade B undid B's moves too. Both are now refused before any write (a
// write-counting proxy sees none), with the command that clears them.
func TestDefect2RollbackRefused(t *testing.T) {
	e := newEnv(t)
	kc := sandboxtest.Kubeconfig(t)
	wc := startWriteCounter(t)

	t.Run("after prune", func(t *testing.T) {
		const old = "d2-old"
		e.installRevision(t, fromVersion, old)
		p := e.seedOn(t, demo.MigrationOptions{Prefix: "d2p", Namespaces: 2, Workloads: 4}, old)
		nss := p.NamespaceNames()
		code, out, errOut := runCLI("upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", old, "--name", "d2-pruned",
			"--skip", "install,gateways,tags", "--prune", "--namespace-only", strings.Join(nss, ","), "--waves", "100%", "--parallelism", "4")
		if code != 0 || e.istiodExists(t, old) {
			t.Fatalf("upgrade --prune: exit %d, istiod-%s exists %v\n%s%s", code, old, e.istiodExists(t, old), out, errOut)
		}
		before := wc.writes.Load()
		code, out, errOut = runCLI("rollback", "d2-pruned", "--kubeconfig", wc.kubeconfig)
		if code == 0 || !strings.Contains(errOut, "not installed") || !strings.Contains(errOut, "meshroll revision install --version") || !strings.Contains(errOut, "--revision "+old) {
			t.Errorf("rollback after prune: exit %d; want a refusal naming the reinstall command\n%s%s", code, out, errOut)
		}
		if n, seen := wc.since(before); n != 0 {
			t.Errorf("the refused rollback wrote %d time(s): %v", n, seen)
		}
		if got := e.nsRev(t, nss[0]); got != toRev {
			t.Errorf("namespace %s labelled %s=%q after the refused rollback, want %q", nss[0], istio.LabelRev, got, toRev)
		}
		if imgs := e.waitPodsSettled(t, nss, 4); imgs[toImage] != 4 {
			t.Errorf("pods by proxy image: %s; want all 4 on %s", describe(imgs), toImage)
		}
	})

	t.Run("after a later upgrade", func(t *testing.T) {
		p := e.seed(t, demo.MigrationOptions{Prefix: "d2l", Namespaces: 2, Workloads: 4})
		nss := p.NamespaceNames()
		args := []string{"--kubeconfig", kc, "--skip", "install,gateways,tags", "--namespace-only", strings.Join(nss, ","), "--waves", "100%", "--parallelism", "4"}
		if code, out, errOut := runCLI(append([]string{"upgrade", "--to", toVersion, "--from", fromRev, "--name", "d2-a"}, args...)...); code != 0 {
			t.Fatalf("upgrade A: exit %d\n%s%s", code, out, errOut)
		}
		if code, out, errOut := runCLI(append([]string{"upgrade", "--to", fromVersion, "--from", toRev, "--name", "d2-b"}, args...)...); code != 0 {
			t.Fatalf("upgrade B: exit %d\n%s%s", code, out, errOut)
		}
		before := wc.writes.Load()
		code, out, errOut := runCLI("rollback", "d2-a", "--kubeconfig", wc.kubeconfig)
		if code == 0 || !strings.Contains(errOut, `"d2-b"`) || !strings.Contains(errOut, "meshroll rollback d2-b") {
			t.Errorf("rollback of A after B: exit %d; want a refusal naming B and `meshroll rollback d2-b`\n%s%s", code, out, errOut)
		}
		if n, seen := wc.since(before); n != 0 {
			t.Errorf("the refused rollback wrote %d time(s): %v", n, seen)
		}
		if imgs := e.waitPodsSettled(t, nss, 4); imgs[fromImage] != 4 {
			t.Errorf("pods by proxy image after the refused rollback: %s; want B's result, all 4 on %s", describe(imgs), fromImage)
		}
		// The later one rolls back: everything is A's result again.
		if code, out, errOut := runCLI("rollback", "d2-b", "--kubeconfig", kc); code != 0 {
			t.Fatalf("rollback d2-b: exit %d\n%s%s", code, out, errOut)
		}
		if imgs := e.waitPodsSettled(t, nss, 4); imgs[toImage] != 4 {
			t.Errorf("pods by proxy image after rolling back B: %s; want all 4 on %s", describe(imgs), toImage)
		}
	})
}

// TestDefect3PruneTemplateOnly: a Deployment at 0 replicas and a suspended
// CronJob whose templates name the old revision have no pods, so they used to
// be neither migrated nor counted as referrers, and --prune removed the
// revision under them (their next pod started without a sidecar). Now they
// are migrated by their template, and a template still naming the revision
// (an excluded one here) keeps the prune from removing it.
func TestDefect3PruneTemplateOnly(t *testing.T) {
	e := newEnv(t)
	const old = "d3-old"
	e.installRevision(t, fromVersion, old)
	p := e.seedOn(t, demo.MigrationOptions{Prefix: "d3", Namespaces: 2, Workloads: 2}, old)
	podNS := p.Namespaces[1].Name // pod-level istio.io/rev labels
	ctx := t.Context()
	tpl := func(name string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, istio.LabelRev: old}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: demo.PauseImage}}, RestartPolicy: corev1.RestartPolicyOnFailure,
				Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}},
		}
	}
	for _, name := range []string{"idle", "idle-excluded"} {
		pt := tpl(name)
		pt.Spec.RestartPolicy = corev1.RestartPolicyAlways
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: podNS}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: pt}}
		if _, err := e.kube.AppsV1().Deployments(podNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: podNS}, Spec: batchv1.CronJobSpec{
		Schedule: "0 3 * * *", Suspend: ptr.To(true),
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tpl("nightly")}}}}
	if _, err := e.kube.BatchV1().CronJobs(podNS).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI("upgrade", "--kubeconfig", sandboxtest.Kubeconfig(t), "--to", toVersion, "--from", old, "--name", "d3",
		"--skip", "install,gateways,tags", "--prune", "--namespace-only", strings.Join(p.NamespaceNames(), ","), "--exclude-workload", "Deployment "+podNS+"/idle-excluded",
		"--waves", "100%", "--parallelism", "4")
	t.Logf("upgrade --prune: exit %d\n%s%s", code, out, errOut)
	if !e.istiodExists(t, old) {
		t.Fatalf("revision %s was pruned while Deployment %s/idle-excluded (0 replicas) still names it in its template", old, podNS)
	}
	if code == 0 || !strings.Contains(errOut, "idle-excluded") || strings.Contains(errOut, "app-0000") {
		t.Errorf("exit %d; want the prune refused naming Deployment %s/idle-excluded (and nothing migrated)", code, podNS)
	}
	d, err := e.kube.AppsV1().Deployments(podNS).Get(ctx, "idle", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Labels[istio.LabelRev]; got != toRev {
		t.Errorf("Deployment %s/idle (0 replicas) template names %q, want %q", podNS, got, toRev)
	}
	c, err := e.kube.BatchV1().CronJobs(podNS).Get(ctx, "nightly", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Spec.JobTemplate.Spec.Template.Labels[istio.LabelRev]; got != toRev {
		t.Errorf("CronJob %s/nightly template names %q, want %q", podNS, got, toRev)
	}
	// Its next pod starts on the new revision, with a sidecar.
	if _, err := e.kube.AppsV1().Deployments(podNS).Patch(ctx, "idle", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := e.kube.CoreV1().Pods(podNS).List(ctx, metav1.ListOptions{LabelSelector: "app=idle"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) > 0 {
			if img := proxyImageOf(&pods.Items[0]); img != toImage {
				t.Errorf("the scaled-up pod runs proxy %q, want %q", img, toImage)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no pod after scaling Deployment idle to 1")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// proxyImageOf is a pod's istio-proxy image, "" without a sidecar.
func proxyImageOf(p *corev1.Pod) string {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == "istio-proxy" {
				return c.Image
			}
		}
	}
	return ""
}

// gatewayOn installs blue/green gateway name in ns on revision rev and
// exposes it.
func gatewayOn(t *testing.T, name, ns, rev string) {
	t.Helper()
	kc := sandboxtest.Kubeconfig(t)
	for _, args := range [][]string{
		{"gateway", "install", "--kubeconfig", kc, "--name", name, "--namespace", ns, "--revision", rev},
		{"gateway", "expose", "--kubeconfig", kc, "--name", name, "--namespace", ns},
	} {
		if code, out, errOut := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}

// gatewayLive is the colour gateway ns/name's Service selects.
func (e *env) gatewayLive(t *testing.T, ns, name string) string {
	t.Helper()
	svc, err := e.kube.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector[istio.LabelRev]
}

// TestDefect6GatewaysFlippedBack: which gateways the run flipped used to be
// known only to the CLI process, so after a kill `meshroll rollback` put the
// workloads back on the old revision and left the gateway on the new one,
// and a halted run never flipped it back either. The gateway step is now
// recorded in the MeshUpgrade: rollback and halt flip it back.
func TestDefect6GatewaysFlippedBack(t *testing.T) {
	e := newEnv(t)
	kc := sandboxtest.Kubeconfig(t)
	const gwNS, gw = "d6-gw", "edge6"
	gatewayOn(t, gw, gwNS, fromRev)
	bin := buildMeshroll(t)

	t.Run("killed after the flip, then rollback", func(t *testing.T) {
		p := e.seed(t, demo.MigrationOptions{Prefix: "d6k", Namespaces: 2, Workloads: 4})
		nss := p.NamespaceNames()
		ctx := t.Context()
		w, err := e.kube.CoreV1().Services(gwNS).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + gw})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		cmd := exec.Command(bin, "upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--name", "d6-kill",
			"--skip", "install,tags", "--namespace-only", strings.Join(nss, ","), "--waves", "1,100%", "--parallelism", "1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		flipped := false
		timeout := time.After(3 * time.Minute)
		for !flipped {
			select {
			case ev := <-w.ResultChan():
				if svc, ok := ev.Object.(*corev1.Service); ok && svc.Spec.Selector[istio.LabelRev] == toRev {
					flipped = true
				}
			case <-timeout:
				_ = cmd.Process.Kill()
				t.Fatalf("the gateway never flipped\n%s", out.String())
			}
		}
		// Let the first wave start, so workloads are moved too.
		time.Sleep(2 * time.Second)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		code, rout, rerr := runCLI("rollback", "d6-kill", "--kubeconfig", kc)
		if code != 0 {
			t.Fatalf("rollback: exit %d\n%s%s", code, rout, rerr)
		}
		if live := e.gatewayLive(t, gwNS, gw); live != fromRev {
			t.Errorf("gateway %s/%s selects %q after the rollback, want %q (the workloads are back on it)", gwNS, gw, live, fromRev)
		}
		if imgs := e.waitPodsSettled(t, nss, 4); imgs[fromImage] != 4 {
			t.Errorf("pods by proxy image after the rollback: %s; want all 4 on %s", describe(imgs), fromImage)
		}
	})

	t.Run("halted run", func(t *testing.T) {
		p := e.seed(t, demo.MigrationOptions{Prefix: "d6h", Namespaces: 2, Workloads: 2})
		nss := p.NamespaceNames()
		var status atomic.Int32
		status.Store(http.StatusServiceUnavailable)
		probe, _ := probeServer(t, &status)
		code, out, errOut := runCLI("upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--name", "d6-halt",
			"--skip", "install,tags", "--namespace-only", strings.Join(nss, ","), "--waves", "1,100%", "--parallelism", "2",
			"--probe", probe, "--rollback", "manual")
		if code != 3 {
			t.Fatalf("exit %d; want 3 (halted by the failing probe)\n%s%s", code, out, errOut)
		}
		mu, err := e.store().Get(t.Context(), "d6-halt")
		if err != nil {
			t.Fatal(err)
		}
		if mu.Status.Phase != v1alpha1.PhaseHalted {
			t.Errorf("phase %s, want Halted", mu.Status.Phase)
		}
		if live := e.gatewayLive(t, gwNS, gw); live != fromRev {
			t.Errorf("gateway %s/%s selects %q after the halt, want %q", gwNS, gw, live, fromRev)
		}
	})
}

// TestPruneRemovesOldGatewayColour: with blue/green gateways the old colour's
// pods kept the old revision in use, so `upgrade --prune` could never prune.
// The prune step removes the old colour of every gateway the run flipped
// (after the last bake, nothing selects it), then the revision.
func TestPruneRemovesOldGatewayColour(t *testing.T) {
	e := newEnv(t)
	const old, gwNS, gw = "pg-old", "pg-gw", "edgep"
	e.installRevision(t, fromVersion, old)
	gatewayOn(t, gw, gwNS, old)
	p := e.seedOn(t, demo.MigrationOptions{Prefix: "pg", Namespaces: 2, Workloads: 2}, old)
	code, out, errOut := runCLI("upgrade", "--kubeconfig", sandboxtest.Kubeconfig(t), "--to", toVersion, "--from", old, "--name", "pg",
		"--skip", "install,tags", "--prune", "--namespace-only", strings.Join(p.NamespaceNames(), ","), "--waves", "100%", "--parallelism", "2")
	if code != 0 {
		t.Fatalf("upgrade --prune: exit %d\n%s%s", code, out, errOut)
	}
	if e.istiodExists(t, old) {
		t.Errorf("revision %s was not pruned\n%s", old, out)
	}
	if live := e.gatewayLive(t, gwNS, gw); live != toRev {
		t.Errorf("gateway %s/%s selects %q, want %q", gwNS, gw, live, toRev)
	}
	if _, err := e.kube.AppsV1().Deployments(gwNS).Get(t.Context(), gw+"-"+old, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old colour %s-%s is still there: %v", gw, old, err)
	}
}
