package upgrade

// Tests named for the defects of issue 9 ("Trustworthy upgrades"); each
// failed on 5c5741d.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/webhook"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// runCLI runs one meshroll command in process.
func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// probeServer is a load-probe target answering status to every request.
func probeServer(t *testing.T, status *atomic.Int32) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

// TestDefect1LastWaveGated: with --waves 100% the only wave is also the
// last; it used to be followed by no gate at all (a failing probe was never
// run, the upgrade "succeeded"). Now readiness and the gates run after it,
// and with --bake the wave soaks and is gated again before the run ends.
func TestDefect1LastWaveGated(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d1", Namespaces: 2, Workloads: 4})
	nss := p.NamespaceNames()
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	probe, hits := probeServer(t, &status)
	kc := sandboxtest.Kubeconfig(t)
	base := []string{"upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--skip", "install,gateways,tags",
		"--namespace-only", strings.Join(nss, ","), "--waves", "100%", "--parallelism", "4", "--probe", probe}

	code, out, errOut := runCLI(append(base, "--name", "d1-failing")...)
	if code != 3 || hits.Load() == 0 {
		t.Fatalf("exit %d with %d probe requests; want exit 3 after the probe gate failed after the last wave\n%s%s", code, hits.Load(), out, errOut)
	}
	mu, err := e.store().Get(t.Context(), "d1-failing")
	if err != nil {
		t.Fatal(err)
	}
	if mu.Status.Phase != v1alpha1.PhaseRolledBack || mu.Status.Counts.RolledBack != len(p.Workloads) {
		t.Errorf("phase %s counts %+v; want RolledBack with all %d rolled back", mu.Status.Phase, mu.Status.Counts, len(p.Workloads))
	}
	if imgs := e.waitPodsSettled(t, nss, len(p.Workloads)); imgs[fromImage] != len(p.Workloads) {
		t.Errorf("pods by proxy image after the failed last wave: %s; want all on %s", describe(imgs), fromImage)
	}

	t.Run("bake", func(t *testing.T) {
		status.Store(http.StatusOK)
		start := time.Now()
		code, out, errOut := runCLI(append(base, "--name", "d1-baked", "--bake", "4s")...)
		took := time.Since(start)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		mu, err := e.store().Get(t.Context(), "d1-baked")
		if err != nil {
			t.Fatal(err)
		}
		// Readiness and the probe, right after the wave and again at the
		// end of its bake.
		verdicts := map[string]int{}
		for _, g := range mu.Status.Gates {
			if g.Wave != 1 || !g.Passed {
				t.Errorf("unexpected verdict %+v", g)
			}
			verdicts[g.Name]++
		}
		if verdicts["readiness"] != 2 || verdicts["probe"] != 2 || len(verdicts) != 2 {
			t.Errorf("verdicts %v; want readiness and probe twice each", verdicts)
		}
		baked := false
		for _, h := range mu.Status.History {
			baked = baked || h.Type == "Baking"
		}
		if !baked || took < 4*time.Second || mu.Status.Phase != v1alpha1.PhaseSucceeded {
			t.Errorf("phase %s after %s, baked %v; want Succeeded after a bake of 4s", mu.Status.Phase, took, baked)
		}
	})
}

// TestDefect4KillBetweenPatchAndStatus kills `meshroll upgrade` (SIGKILL)
// the moment its first workload patch lands, then runs `meshroll rollback`.
// The workload used to be marked pending only in memory, so the rollback
// found no record of it and left it migrated; now the intent is in the
// status before the patch is sent.
func TestDefect4KillBetweenPatchAndStatus(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d4k", Namespaces: 2, Workloads: 20})
	podNS := p.Namespaces[1].Name // moved per workload: no namespace relabel writes the status early
	bin := buildMeshroll(t)
	kc := sandboxtest.Kubeconfig(t)
	const name = "d4-kill"
	ctx := t.Context()
	w, err := e.kube.AppsV1().Deployments(podNS).Watch(ctx, metav1.ListOptions{LabelSelector: webhook.LabelUpgrade + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cmd := exec.Command(bin, "upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--name", name,
		"--skip", "install,gateways,tags", "--namespace-only", podNS, "--waves", "100%", "--parallelism", "10")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.ResultChan():
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("no workload was patched\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	moved := e.labelled(t, podNS, name)
	t.Logf("killed with %d workload(s) patched", len(moved))
	if len(moved) == 0 {
		t.Fatal("no workload carries the upgrade's label after the kill")
	}
	code, rout, rerr := runCLI("rollback", name, "--kubeconfig", kc)
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, rout, rerr)
	}
	if left := e.labelled(t, podNS, name); len(left) > 0 {
		t.Errorf("after rollback %d workload(s) still carry the upgrade's label: %v", len(left), left)
	}
	if imgs := e.waitPodsSettled(t, []string{podNS}, 10); imgs[fromImage] != 10 {
		t.Errorf("pods by proxy image after rollback: %s; want all 10 on %s", describe(imgs), fromImage)
	}
}

// TestDefect4RollbackFindsLabelledWorkloads loses the record of every move
// (as a failed or overwritten status write would) after a successful run:
// `meshroll rollback` must still restore every workload that carries the
// upgrade's label on the cluster.
func TestDefect4RollbackFindsLabelledWorkloads(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d4l", Namespaces: 2, Workloads: 8})
	podNS := p.Namespaces[1].Name
	mu := e.start(t, spec("d4-lost", []string{podNS}, []v1alpha1.WaveSize{{Percent: 100}}, 4), nil)
	out, err := e.engine(t, nil, nil).Run(t.Context(), mu.Name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out.Status.Workloads {
		out.Status.Workloads[i].Outcome = ""
	}
	if _, err := e.store().UpdateStatus(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if n := len(e.labelled(t, podNS, mu.Name)); n != 4 {
		t.Fatalf("%d workload(s) carry the label before rollback, want 4", n)
	}
	code, rout, rerr := runCLI("rollback", mu.Name, "--kubeconfig", sandboxtest.Kubeconfig(t))
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, rout, rerr)
	}
	if left := e.labelled(t, podNS, mu.Name); len(left) > 0 {
		t.Errorf("after rollback %d workload(s) still carry the upgrade's label: %v", len(left), left)
	}
	if imgs := e.waitPodsSettled(t, []string{podNS}, 4); imgs[fromImage] != 4 {
		t.Errorf("pods by proxy image after rollback: %s; want all 4 on %s", describe(imgs), fromImage)
	}
}

// labelled lists the Deployments of ns carrying upgrade's label.
func (e *env) labelled(t *testing.T, ns, upgrade string) []string {
	t.Helper()
	l, err := e.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{LabelSelector: webhook.LabelUpgrade + "=" + upgrade})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range l.Items {
		out = append(out, d.Name)
	}
	return out
}

// TestDefect7WebhookScopedToItsUpgrade: upgrade A moved workloads to 1-24-2
// and finished; upgrade B moves them back to 1-23-2 while `meshroll webhook`
// serves. The webhook used to stamp A's revision over B's own patch (A stayed
// in its table and it ignored which upgrade the label names), so B's new pods
// came up on 1-24-2 and B failed.
func TestDefect7WebhookScopedToItsUpgrade(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d7", Namespaces: 2, Workloads: 8})
	podNS := p.Namespaces[1].Name
	a := e.start(t, spec("d7-a", []string{podNS}, []v1alpha1.WaveSize{{Percent: 100}}, 4), nil)
	if _, err := e.engine(t, nil, nil).Run(t.Context(), a.Name); err != nil {
		t.Fatal(err)
	}
	serveWebhook(t, e)

	b := spec("d7-b", []string{podNS}, []v1alpha1.WaveSize{{Percent: 100}}, 4)
	b.Spec.From, b.Spec.To = toRev, fromRev
	b = e.start(t, b, nil)
	out, err := e.engine(t, nil, nil).Run(t.Context(), b.Name)
	if err != nil || out.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("upgrade B: %v (phase %s: %s)", err, out.Status.Phase, out.Status.Message)
	}
	if imgs := e.waitPodsSettled(t, []string{podNS}, 4); imgs[fromImage] != 4 {
		t.Errorf("pods by proxy image after upgrade B: %s; want all 4 on %s", describe(imgs), fromImage)
	}
}

// serveWebhook runs `meshroll webhook` until the test ends and waits until
// it is registered.
func serveWebhook(t *testing.T, e *env) (stop func()) {
	t.Helper()
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
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhook.ConfigName, metav1.GetOptions{})
		if err == nil {
			return stop
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("webhook never registered: %v\n%s%s", err, out.String(), errOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDefect9UpgradeChecksBeforeWriting runs `meshroll upgrade` through a
// write-counting proxy with a target revision that is not installed, so the
// install would be the first write: every refusal must come before it (it
// used to come after the canary install and the gateway flips).
func TestDefect9UpgradeChecksBeforeWriting(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "d9", Namespaces: 2, Workloads: 4})
	nss := p.NamespaceNames()
	running := e.start(t, spec("d9-running", nss[1:], []v1alpha1.WaveSize{{Percent: 100}}, 1), nil)
	wc := startWriteCounter(t)
	const target = "d9-canary"
	base := []string{"upgrade", "--kubeconfig", wc.kubeconfig, "--to", toVersion, "--revision", target, "--from", fromRev, "--name", "d9"}
	only := []string{"--namespace-only", nss[0]}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"gate without prometheus", append(only, "--gate", "error-rate"), []string{"--prometheus"}},
		{"prometheus unreachable", append(only, "--gate", "error-rate", "--prometheus", "http://127.0.0.1:1"), []string{"127.0.0.1:1"}},
		{"probe is not a URL", append(only, "--probe", "not a url"), []string{"probe"}},
		{"first names no namespace", append(only, "--first", "d9-no-such-namespace"), []string{"--first", "d9-no-such-namespace"}},
		{"last names no namespace", append(only, "--last", "tier=no-such-tier"), []string{"--last", "tier=no-such-tier"}},
		{"excluded workload does not exist", append(only, "--exclude-workload", "Deployment d9-00/nope"), []string{"--exclude-workload", "Deployment d9-00/nope"}},
		{"selection matches nothing", []string{"--namespace-only", "d9-no-such-namespace"}, []string{"matches no workload"}},
		{"drill without migrate", append(only, "--drill", "--skip", "migrate"), []string{"--drill"}},
		{"report not writable", append(only, "--report", filepath.Join(t.TempDir(), "missing", "r.html")), []string{"--report"}},
		{"planner refuses an overlap", []string{"--namespace-only", nss[1]}, []string{`MeshUpgrade "` + running.Name + `"`}},
		{"dry run shows every problem", append(only, "--dry-run", "--gate", "error-rate", "--first", "d9-nope"), []string{"--prometheus", "--first"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := wc.writes.Load()
			code, out, errOut := runCLI(append(slicesClone(base), c.args...)...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
				t.Fatalf("exit %d, stderr %q; want one error line\n%s", code, errOut, out)
			}
			for _, w := range c.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error %q lacks %q", lines[0], w)
				}
			}
			if n, seen := wc.since(before); n != 0 {
				t.Errorf("%d write(s) before the refusal: %v", n, seen)
			}
			t.Logf("refused: %s", lines[0])
		})
	}
	if _, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+target, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("revision %s was installed: %v", target, err)
	}

	t.Run("a clean dry run lists the checks", func(t *testing.T) {
		before := wc.writes.Load()
		code, out, errOut := runCLI(append(slicesClone(base), append(only, "--dry-run")...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"check selection: ok", "check gates: ok", "check report: ok", "nothing changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run output lacks %q:\n%s", want, out)
			}
		}
		if n, seen := wc.since(before); n != 0 {
			t.Errorf("the dry run wrote %d time(s): %v", n, seen)
		}
		t.Logf("dry run output:\n%s", out)
	})
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TestDefect11ChartsHonouredMidRun upgrades with --charts while no `go`
// binary is on PATH and the render cache is empty, as on an air-gapped
// machine: the gateway colour install and the mid-run tag move must render
// from the given charts. They used to fall back to the Go module download
// and fail half way.
func TestDefect11ChartsHonouredMidRun(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	charts, err := istio.ModuleSource{}.ChartsDir(ctx, toVersion)
	if err != nil {
		t.Fatal(err)
	}
	const tag, ns, gwNS = "d11", "d11-tagged", "d11-gw"
	if _, err := controlplane.SetTag(ctx, e.cp(), controlplane.TagOptions{Tag: tag, Revision: fromRev, Force: true}); err != nil {
		t.Fatal(err)
	}
	plan, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "d11w", Namespaces: 2, Workloads: 2, Revision: fromRev})
	if err != nil {
		t.Fatal(err)
	}
	plan.Namespaces = plan.Namespaces[:1]
	plan.Namespaces[0].Name = ns
	plan.Namespaces[0].Labels[istio.LabelRev] = tag
	for i := range plan.Workloads {
		plan.Workloads[i].Namespace = ns
		delete(plan.Workloads[i].PodLabels, istio.LabelRev)
	}
	if err := demo.Apply(ctx, e.kube, plan); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitReady(ctx, e.kube, plan); err != nil {
		t.Fatal(err)
	}
	kc := sandboxtest.Kubeconfig(t)
	for _, args := range [][]string{
		{"gateway", "install", "--kubeconfig", kc, "--name", "edge", "--namespace", gwNS, "--revision", fromRev},
		{"gateway", "expose", "--kubeconfig", kc, "--name", "edge", "--namespace", gwNS},
	} {
		if code, out, errOut := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}

	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if _, err := exec.LookPath("go"); !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("go is still on PATH: %v", err)
	}
	code, out, errOut := runCLI("upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--name", "d11",
		"--skip", "install", "--charts", charts, "--namespace-only", ns, "--waves", "100%", "--parallelism", "2")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	w, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, istio.TagWebhookPrefix+tag, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := w.Labels[istio.LabelRev]; rev != toRev {
		t.Errorf("tag %s points at %q, want %q", tag, rev, toRev)
	}
	svc, err := e.kube.CoreV1().Services(gwNS).Get(ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := svc.Spec.Selector[istio.LabelRev]; rev != toRev {
		t.Errorf("gateway Service selects %q, want %q", rev, toRev)
	}
	if imgs := e.waitPodsSettled(t, []string{ns}, 2); imgs[toImage] != 2 {
		t.Errorf("pods by proxy image: %s; want both on %s", describe(imgs), toImage)
	}
}
