package upgrade

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestUpgradeBadInput runs `meshroll upgrade` with inputs it must refuse:
// each gets one error line naming the problem and the fix, a non-zero exit,
// and no write to the cluster (no MeshUpgrade, no workload touched).
func TestUpgradeBadInput(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "badin", Namespaces: 2, Workloads: 6})
	nss := p.NamespaceNames()
	ctx := t.Context()

	// A namespace carrying both injection labels; the default tag makes
	// Istio inject it (istio-injection=enabled wins over the revision label).
	if _, err := controlplane.SetTag(ctx, e.cp(), controlplane.TagOptions{Tag: "default", Revision: fromRev, Overwrite: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	conflict := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "badin-conflict", Labels: map[string]string{istio.LabelRev: fromRev, istio.LabelInjection: "enabled"}}}
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, conflict, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cp := demo.MigrationOptions{Prefix: "badin-conflict-w", Namespaces: 2, Workloads: 1, Revision: fromRev}
	plan, _ := demo.MigrationPlan(cp)
	plan.Namespaces = nil
	plan.Workloads[0].Namespace = conflict.Name
	if err := demo.Apply(ctx, e.kube, plan); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitReady(ctx, e.kube, plan); err != nil {
		t.Fatal(err)
	}

	// An upgrade already running on the same workloads.
	running := e.start(t, spec("badin-running", nss[:1], []v1alpha1.WaveSize{{Percent: 100}}, 1), nil)

	prom := gatetest.StartPrometheus(t)
	kc := sandboxtest.Kubeconfig(t)
	base := []string{"upgrade", "--kubeconfig", kc, "--to", toVersion, "--from", fromRev, "--skip", "install,gateways,tags"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"target not installed", []string{"upgrade", "--kubeconfig", kc, "--to", "1.25.1", "--from", fromRev, "--skip", "install"}, `target revision "1-25-1" is not installed`},
		{"selection matches nothing", append(base, "--namespace-only", "no-such-namespace"), "matches no workload"},
		{"conflicting labels", append(base, "--namespace-only", conflict.Name), "has both istio-injection=enabled and istio.io/rev=1-23-2"},
		{"already running", append(base, "--namespace-only", nss[0], "--name", "badin-second"), fmt.Sprintf("MeshUpgrade %q (phase Pending) is already migrating", running.Name)},
		{"gate query does not parse", append(base, "--namespace-only", nss[1], "--prometheus", prom.URL(), "--gate", "broken=sum(rate(x[1m]) > 1"), "parse error"},
		{"gate without prometheus", append(base, "--namespace-only", nss[1], "--gate", "error-rate"), "--prometheus"},
		{"bad waves", append(base, "--waves", "0"), "invalid --waves"},
		{"unknown step", append(base, "--skip", "everything"), "invalid --skip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.writes.Load()
			rvBefore := resourceVersions(t, e, nss)
			var out, errOut bytes.Buffer
			code := cli.Main(context.Background(), c.args, &out, &errOut)
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], c.want) {
				t.Fatalf("exit %d, stderr %q; want one error line containing %q", code, errOut.String(), c.want)
			}
			if w := e.writes.Load() - before; w != 0 {
				t.Errorf("%d writes through the test's clients", w)
			}
			if after := resourceVersions(t, e, nss); after != rvBefore {
				t.Errorf("workloads changed: %s → %s", rvBefore, after)
			}
			if _, err := e.store().Get(ctx, "badin-second"); err == nil {
				t.Error("a MeshUpgrade was created")
			}
		})
	}
}

// resourceVersions fingerprints the Deployments of the namespaces.
func resourceVersions(t *testing.T, e *env, nss []string) string {
	t.Helper()
	var b strings.Builder
	for _, ns := range nss {
		l, err := e.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l.Items {
			fmt.Fprintf(&b, "%s/%s@%d ", ns, d.Name, d.Generation)
		}
	}
	return b.String()
}
