// Package hops holds the end-to-end test of a multi-hop upgrade: `meshroll
// upgrade --to 1.26.1` on a mesh running 1.23.2 runs the planner's two hops
// (1.23.2 → 1.25.1 → 1.26.1) one after another with real istiod for each
// release. It has a sandbox of its own: a 1.26.1 install is refused while a
// 1.23 control plane is installed, which the upgrade package keeps for its
// other tests.
package hops

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2))) }

const (
	startVersion, startRev = "1.23.2", "1-23-2"
	midRev                 = "1-25-1"
	finalVersion, finalRev = "1.26.1", "1-26-1"
	chainName              = startRev + "-to-" + finalRev
)

// TestMultiHopUpgrade: the dry run prints both hops and changes nothing;
// the real run is killed with SIGKILL in the middle of hop 1's waves and the
// same command, rerun, resumes the chain: hop 1 finishes (and prunes 1-23-2,
// which 1.26.1 may not be installed beside), hop 2 runs. Every pod ends on
// 1.26.1, each hop is a Succeeded MeshUpgrade of its own, no Deployment was
// restarted twice (three ReplicaSets: the original and one per hop), and the
// rollback of hop 1 is refused, naming hop 2 and the pruned revision; the
// rollback of the whole path takes hop 2 back (removing 1-26-1, which it
// installed) and stops at hop 1 with the same refusal.
func TestMultiHopUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the sandbox (run without -short)")
	}
	ctx := t.Context()
	cfg := sandboxtest.Config(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	store := upgrade.Store{Dynamic: dynamic.NewForConfigOrDie(cfg)}
	istiodtest.Start(t)
	cp := controlplane.Clients{Kube: kube, Dynamic: store.Dynamic}
	if _, err := controlplane.Install(ctx, cp, controlplane.InstallOptions{Render: istio.RenderOptions{Version: startVersion, Revision: startRev}}); err != nil {
		t.Fatal(err)
	}
	p, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "hops", Namespaces: 2, Workloads: 4, Revision: startRev})
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Apply(ctx, kube, p); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitReady(ctx, kube, p); err != nil {
		t.Fatal(err)
	}
	nss, n := p.NamespaceNames(), len(p.Workloads)
	kc := sandboxtest.Kubeconfig(t)
	args := []string{"upgrade", "--kubeconfig", kc, "--to", finalVersion, "--waves", "1,100%", "--parallelism", "2", "--bake", "2s"}

	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), append(args, "--dry-run"), &out, &errOut); code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"1.23.2 → 1.25.1 → 1.26.1 (2 hops", "hop 1/2: 1-23-2 → 1-25-1", "hop 2/2: 1-25-1 → 1-26-1", "nothing changed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	if l, err := store.List(ctx); err == nil && len(l) > 0 {
		t.Fatalf("the dry run created %d MeshUpgrade(s)", len(l))
	}

	bin := filepath.Join(t.TempDir(), "meshroll")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/meshroll/meshroll/cmd/meshroll").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	start := time.Now()
	killedAt := killMidHop(t, store, bin, args, chainName+"-hop1")
	t.Logf("killed at: %s", killedAt)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rerun, err := exec.CommandContext(rctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, rerun)
	}
	t.Logf("rerun (whole path %s):\n%s", time.Since(start).Round(time.Second), rerun)

	for i := 1; i <= 2; i++ {
		mu, err := store.Get(ctx, chainName+"-hop"+string(rune('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if mu.Status.Phase != v1alpha1.PhaseSucceeded || mu.Labels["meshroll.io/chain"] != chainName {
			t.Errorf("hop %d: phase %s (%s), chain label %q", i, mu.Status.Phase, mu.Status.Message, mu.Labels["meshroll.io/chain"])
		}
		if s := mu.Status.Step(v1alpha1.StepInstall); s == nil || s.State != v1alpha1.StepDone || mu.Status.Install == nil || !mu.Status.Install.Owned {
			t.Errorf("hop %d: install step %+v record %+v; want Done and owned", i, s, mu.Status.Install)
		}
	}
	imgs, err := demo.SettledProxyImages(ctx, kube, nss, n, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if imgs["docker.io/istio/proxyv2:"+finalVersion] != n || len(imgs) != 1 {
		t.Errorf("pods by proxy image %v; want all %d on %s", imgs, n, finalVersion)
	}
	for _, ns := range nss {
		rss, err := kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, rs := range rss.Items {
			for _, o := range rs.OwnerReferences {
				per[o.Name]++
			}
		}
		for d, c := range per {
			if c != 3 {
				t.Errorf("Deployment %s/%s has %d ReplicaSets, want 3 (the original and one per hop): restarted twice, or never", ns, d, c)
			}
		}
	}
	for rev, want := range map[string]bool{startRev: false, midRev: true, finalRev: true} {
		_, err := kube.AppsV1().Deployments(istio.SystemNamespace).Get(ctx, "istiod-"+rev, metav1.GetOptions{})
		if (err == nil) != want {
			t.Errorf("istiod-%s installed %v, want %v", rev, err == nil, want)
		}
	}
	out.Reset()
	errOut.Reset()
	code := cli.Main(context.Background(), []string{"rollback", chainName + "-hop1", "--kubeconfig", kc}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), chainName+"-hop2") || !strings.Contains(errOut.String(), "revision 1-23-2 is not installed") {
		t.Errorf("rollback of hop 1 after hop 2: exit %d, %q; want a refusal naming hop 2 and the pruned 1-23-2", code, errOut.String())
	}

	// The chain's own name rolls its hops back newest first: hop 2 goes
	// (and with it 1-26-1, which it installed), hop 1 is refused (its old
	// revision was pruned) and says so.
	out.Reset()
	errOut.Reset()
	code = cli.Main(context.Background(), []string{"rollback", chainName, "--kubeconfig", kc}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "revision 1-23-2 is not installed") {
		t.Errorf("rollback %s: exit %d, %q; want hop 2 rolled back, then hop 1 refused for the pruned 1-23-2\n%s", chainName, code, errOut.String(), out.String())
	}
	if mu, err := store.Get(ctx, chainName+"-hop2"); err != nil || mu.Status.Phase != v1alpha1.PhaseRolledBack || mu.Status.Install == nil || !mu.Status.Install.Removed {
		t.Errorf("hop 2 after the chain's rollback: %+v, %v; want RolledBack with 1-26-1 removed", mu.Status, err)
	}
	if imgs, err := demo.SettledProxyImages(ctx, kube, nss, n, 2*time.Minute); err != nil || imgs["docker.io/istio/proxyv2:1.25.1"] != n {
		t.Errorf("pods by proxy image after the chain's rollback: %v, %v; want all %d on 1.25.1", imgs, err, n)
	}
	if _, err := kube.AppsV1().Deployments(istio.SystemNamespace).Get(ctx, "istiod-"+finalRev, metav1.GetOptions{}); err == nil {
		t.Errorf("istiod-%s still installed after hop 2, which installed it, was rolled back", finalRev)
	}
}

// killMidHop runs the upgrade and sends SIGKILL once hop's MeshUpgrade has
// moved its first wave; it returns what the record showed.
func killMidHop(t *testing.T, store upgrade.Store, bin string, args []string, hop string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(8 * time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("the upgrade ended before hop 1's waves were under way: %v\n%s", err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("hop 1 never started moving\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if mu, err := store.Get(t.Context(), hop); err == nil && mu.Status.Counts.Succeeded >= 1 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			t.Logf("killed run's output:\n%s", out.String())
			return string(mu.Status.Phase) + ", wave " + string(rune('0'+mu.Status.CurrentWave))
		}
	}
}
