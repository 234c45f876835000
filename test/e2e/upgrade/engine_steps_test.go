package upgrade

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestDefectKilledInstallLeftUnrecorded: `meshroll upgrade` used to install
// the canary revision before any MeshUpgrade existed, so a kill -9 during
// the install left a half-installed revision that nothing recorded and
// `meshroll rollback` could not even find. The install is now the first
// recorded step: the kill leaves a MeshUpgrade saying the run owns the
// revision, and its rollback removes exactly that revision. A run whose
// target was installed before it records that it does not own it, and its
// rollback leaves it installed.
func TestDefectKilledInstallLeftUnrecorded(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "einst", Namespaces: 1, Workloads: 2})
	nss := p.NamespaceNames()
	kc := sandboxtest.Kubeconfig(t)
	bin := buildMeshroll(t)
	const name, rev = "einst", "einst-c"
	before := resourceVersions(t, e, nss)

	cmd := exec.Command(bin, "upgrade", "--kubeconfig", kc, "--to", toVersion, "--revision", rev, "--from", fromRev, "--name", name,
		"--namespace-only", strings.Join(nss, ","), "--skip", "gateways,tags", "--waves", "100%", "--parallelism", "2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !e.istiodExists(t, rev) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("istiod-%s never appeared\n%s", rev, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	t.Logf("killed during the install of %s:\n%s", rev, out.String())

	mu, err := e.store().Get(t.Context(), name)
	if err != nil {
		t.Fatalf("after a kill during the install, no MeshUpgrade records it (%v): the half-installed revision %s is invisible to rollback", err, rev)
	}
	if mu.Status.Install == nil || !mu.Status.Install.Owned || mu.Status.Install.Revision != rev {
		t.Fatalf("install record %+v; want revision %s owned by the run", mu.Status.Install, rev)
	}
	if code, o, eo := runCLI("rollback", name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("rollback after the killed install: exit %d\n%s%s", code, o, eo)
	}
	mu, err = e.store().Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if mu.Status.Phase != v1alpha1.PhaseRolledBack || !mu.Status.Install.Removed {
		t.Errorf("after rollback: phase %s, install %+v; want RolledBack with the revision removed", mu.Status.Phase, mu.Status.Install)
	}
	if e.istiodExists(t, rev) {
		t.Errorf("istiod-%s is still there after the rollback of the upgrade that installed it", rev)
	}
	hooks, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(t.Context(), metav1.ListOptions{LabelSelector: istio.LabelRev + "=" + rev})
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks.Items) > 0 {
		t.Errorf("%d injector webhook(s) of %s left after the rollback", len(hooks.Items), rev)
	}
	if _, found, err := controlplane.ReadRecord(t.Context(), e.kube, istio.SystemNamespace, rev); err != nil || found {
		t.Errorf("install record of %s: found %v, %v; want it gone", rev, found, err)
	}
	for _, keep := range []string{fromRev, toRev} {
		if !e.istiodExists(t, keep) {
			t.Errorf("revision %s, installed before the upgrade, was removed", keep)
		}
	}
	if after := resourceVersions(t, e, nss); after != before {
		t.Errorf("workloads changed although the run never reached its waves: %s → %s", before, after)
	}

	// The target already installed: not owned, kept by the rollback.
	const pre = "einst-pre"
	if code, o, eo := runCLI("upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--name", pre,
		"--namespace-only", strings.Join(nss, ","), "--skip", "gateways,tags", "--waves", "100%"); code != 0 {
		t.Fatalf("upgrade onto the installed %s: exit %d\n%s%s", toRev, code, o, eo)
	}
	mu, err = e.store().Get(t.Context(), pre)
	if err != nil {
		t.Fatal(err)
	}
	if s := mu.Status.Step(v1alpha1.StepInstall); s == nil || s.State != v1alpha1.StepDone || mu.Status.Install == nil || mu.Status.Install.Owned {
		t.Errorf("install step %+v, record %+v; want Done, not owned", s, mu.Status.Install)
	}
	if code, o, eo := runCLI("rollback", pre, "--kubeconfig", kc); code != 0 {
		t.Fatalf("rollback %s: exit %d\n%s%s", pre, code, o, eo)
	}
	if !e.istiodExists(t, toRev) {
		t.Fatalf("the rollback of %s removed %s, which was installed before it", pre, toRev)
	}
	if imgs := e.waitPodsSettled(t, nss, len(p.Workloads)); imgs[fromImage] != len(p.Workloads) {
		t.Errorf("pods by proxy image after the rollback: %s; want all on %s", describe(imgs), fromImage)
	}
}

// TestDefectRollbackOfOlderAfterRolledBackNewer: upgrade A moved workloads
// 1-23-2 → 1-24-2, upgrade B moved the same ones on to a third revision.
// Rolling back A while B is live is refused, naming B. B's rollback used to
// strip A's marks from every workload, so A's rollback then restored nothing
// and left the pods on 1-24-2 while reporting RolledBack. B's rollback now
// hands the workloads back exactly as A left them, and A's rollback puts
// every pod back on 1-23-2.
func TestDefectRollbackOfOlderAfterRolledBackNewer(t *testing.T) {
	e := newEnv(t)
	const third, thirdVersion = "eab-c", "1.25.1"
	e.installRevision(t, thirdVersion, third)
	// The package's sandbox is shared: a 1.25.1 revision left installed
	// makes every later upgrade to 1.24.2 straddle minors and be refused
	// (TestKilledAndResumed was, in a full make test).
	t.Cleanup(func() {
		if code, o, eo := runCLI("revision", "remove", third, "--kubeconfig", sandboxtest.Kubeconfig(t)); code != 0 {
			t.Errorf("revision remove %s after the test: exit %d\n%s%s", third, code, o, eo)
		}
	})
	p := e.seed(t, demo.MigrationOptions{Prefix: "eab", Namespaces: 2, Workloads: 4})
	nss := p.NamespaceNames()
	n := len(p.Workloads)
	kc := sandboxtest.Kubeconfig(t)

	a := spec("eab-a", nss, []v1alpha1.WaveSize{{Percent: 100}}, 4)
	a = e.start(t, a, nil)
	if out, err := e.engine(t, nil, nil).Run(t.Context(), a.Name); err != nil || out.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("upgrade A: %v", err)
	}
	e.waitPodsSettled(t, nss, n)
	b := spec("eab-b", nss, []v1alpha1.WaveSize{{Percent: 100}}, 4)
	b.Spec.From, b.Spec.To = toRev, third
	b = e.start(t, b, nil)
	if out, err := e.engine(t, nil, nil).Run(t.Context(), b.Name); err != nil || out.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("upgrade B: %v", err)
	}
	if imgs := e.waitPodsSettled(t, nss, n); imgs["docker.io/istio/proxyv2:"+thirdVersion] != n {
		t.Fatalf("after B: pods by proxy image %s", describe(imgs))
	}

	code, _, eo := runCLI("rollback", a.Name, "--kubeconfig", kc)
	if code == 0 || !strings.Contains(eo, `MeshUpgrade "eab-b"`) || !strings.Contains(eo, "rollback eab-b") {
		t.Fatalf("rollback of A while B is live: exit %d, %q; want a refusal naming eab-b and the command", code, eo)
	}
	if code, o, eo := runCLI("rollback", b.Name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("rollback B: exit %d\n%s%s", code, o, eo)
	}
	if imgs := e.waitPodsSettled(t, nss, n); imgs[toImage] != n {
		t.Fatalf("after B's rollback: pods by proxy image %s; want all %d on %s", describe(imgs), n, toImage)
	}
	if code, o, eo := runCLI("rollback", a.Name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("rollback A after B's: exit %d\n%s%s", code, o, eo)
	}
	if imgs := e.waitPodsSettled(t, nss, n); imgs[fromImage] != n {
		t.Errorf("after A's rollback: pods by proxy image %s; want all %d back on %s", describe(imgs), n, fromImage)
	}
	for _, ns := range nss {
		if got := e.nsRev(t, ns); got != "" && got != fromRev {
			t.Errorf("namespace %s labelled %s=%q after both rollbacks, want %s", ns, istio.LabelRev, got, fromRev)
		}
		deps, err := e.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			if by, ok := d.Labels["meshroll.io/upgrade"]; ok {
				t.Errorf("Deployment %s/%s still carries meshroll.io/upgrade=%s after both rollbacks", ns, d.Name, by)
			}
			if rev, ok := d.Spec.Template.Labels[istio.LabelRev]; ok && rev != fromRev {
				t.Errorf("Deployment %s/%s template names %s after both rollbacks, want %s", ns, d.Name, rev, fromRev)
			}
		}
	}
}

// TestDefectSkipMigrateUnrecorded: with `--skip migrate`, upgrade used to
// flip the gateways and move the tags with no MeshUpgrade at all, so nothing
// could resume or roll them back. The run is now a MeshUpgrade like any
// other (spec.skipMigrate): every step is recorded, run or skipped, and
// `meshroll rollback` flips the gateway and the tag back.
func TestDefectSkipMigrateUnrecorded(t *testing.T) {
	e := newEnv(t)
	kc := sandboxtest.Kubeconfig(t)
	const gwNS, gw, tag, name = "eskip-gw", "eskip", "eskip-tag", "eskip"
	gatewayOn(t, gw, gwNS, fromRev)
	if _, err := controlplane.SetTag(t.Context(), e.cp(), controlplane.TagOptions{Tag: tag, Revision: fromRev, Force: true}); err != nil {
		t.Fatal(err)
	}
	if code, o, eo := runCLI("upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--name", name, "--skip", "install,migrate"); code != 0 {
		t.Fatalf("upgrade --skip install,migrate: exit %d\n%s%s", code, o, eo)
	}
	mu, err := e.store().Get(t.Context(), name)
	if err != nil {
		t.Fatalf("--skip migrate ran gateways and tags with no MeshUpgrade to record them: %v", err)
	}
	want := map[string]v1alpha1.StepState{
		v1alpha1.StepInstall: v1alpha1.StepSkipped, v1alpha1.StepMigrate: v1alpha1.StepSkipped,
		v1alpha1.StepGateways: v1alpha1.StepDone, v1alpha1.StepTags: v1alpha1.StepDone, v1alpha1.StepPrune: v1alpha1.StepSkipped,
	}
	for step, state := range want {
		if s := mu.Status.Step(step); s == nil || s.State != state {
			t.Errorf("step %s recorded %+v, want %s", step, s, state)
		}
	}
	if mu.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("phase %s (%s), want Succeeded", mu.Status.Phase, mu.Status.Message)
	}
	if !slices.ContainsFunc(mu.Status.Gateways, func(g v1alpha1.GatewayFlip) bool { return g.Name == gw && g.Done }) {
		t.Errorf("gateway %s/%s not recorded as flipped: %+v", gwNS, gw, mu.Status.Gateways)
	}
	if !slices.ContainsFunc(mu.Status.Tags, func(m v1alpha1.LabelMove) bool { return m.Name == tag && m.Done }) {
		t.Errorf("tag %s not recorded as moved: %+v", tag, mu.Status.Tags)
	}
	check := func(when, rev string) {
		t.Helper()
		if got := e.gatewayLive(t, gwNS, gw); got != rev {
			t.Errorf("%s: gateway selects %q, want %q", when, got, rev)
		}
		w, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), istio.TagWebhookPrefix+tag, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Labels[istio.LabelRev]; got != rev {
			t.Errorf("%s: tag %s points at %q, want %q", when, tag, got, rev)
		}
	}
	check("after the upgrade", toRev)
	if code, o, eo := runCLI("rollback", name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("rollback %s: exit %d\n%s%s", name, code, o, eo)
	}
	check("after the rollback", fromRev)
}
