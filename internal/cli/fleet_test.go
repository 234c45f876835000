package cli

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestFleetBadInput: every bad flag or fleet file is one error line naming
// the fix, exit 1, before any cluster is contacted.
func TestFleetBadInput(t *testing.T) {
	kc := writeFile(t, "kubeconfig", unreachable)
	file := writeFile(t, "fleet.yaml", "clusters:\n- name: lab-1\n  kubeconfig: "+kc+"\n  labels: {env: lab}\n")
	up := []string{"fleet", "upgrade", "--fleet", file, "--to", "1.24.2"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no version", []string{"fleet", "upgrade", "--stage", "a=env=a"}, "--to is required"},
		{"no stage", up, "no stage: pass --stage NAME=SELECTOR"},
		{"bad stage", append(up, "--stage", "prod"), `invalid --stage "prod": use NAME=SELECTOR`},
		{"approval of no stage", append(up, "--stage", "a=env=lab", "--require-approval", "qa"), `invalid --require-approval "qa": no --stage has that name`},
		{"bad unreachable policy", append(up, "--stage", "a=env=lab", "--unreachable", "maybe"), `invalid --unreachable "maybe"`},
		{"selector matching no cluster", append(up, "--stage", "a=env=prod", "--dry-run"), `stage "a" selector "env=prod" matches no cluster (clusters: lab-1{env=lab})`},
		{"missing fleet file", []string{"fleet", "status", "--fleet", "/nonexistent/fleet.yaml"}, `failed to read fleet file "/nonexistent/fleet.yaml"`},
		{"bad concurrency", []string{"fleet", "status", "--fleet", file, "--concurrency", "0"}, "invalid --concurrency 0"},
		{"bad output", []string{"fleet", "check", "--fleet", file, "-o", "xml"}, `unknown output format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line containing %q", code, errOut, tc.want)
			}
		})
	}
}

// TestFleetStatusUnreachableIsARow: a member that does not answer is a row
// with its error, and the command succeeds.
func TestFleetStatusUnreachableIsARow(t *testing.T) {
	kc := writeFile(t, "kubeconfig", unreachable)
	file := writeFile(t, "fleet.yaml", "clusters:\n- name: lab-1\n  kubeconfig: "+kc+"\n  labels: {env: lab}\n")
	out, errOut, code := run(t, "fleet", "status", "--fleet", file, "--cluster-timeout", "5s")
	if code != 0 || !strings.Contains(out, "lab-1") || !strings.Contains(out, "127.0.0.1:1") || !strings.Contains(out, "1 cluster(s), 1 unreachable") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	_, _, code = run(t, "fleet", "check", "--fleet", file, "--cluster-timeout", "5s")
	if code != 1 {
		t.Errorf("fleet check with an unreachable member: exit %d, want 1", code)
	}
}

// TestDefectMemberResumeAfterLastMoves: the fleet engine killed after a
// member's last moves (every proxy already on the target) resumed the
// member with `meshroll upgrade --to`, which inferred --from from running
// proxies, found none on the old revision and refused ("nothing to
// migrate") forever. The member's recorded source revision is now passed.
func TestDefectMemberResumeAfterLastMoves(t *testing.T) {
	cfg := sandboxtest.Config(t)
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := upgrade.Store{Dynamic: dc}
	if err := store.EnsureCRD(t.Context(), controlplane.NewApplier(dc, kc.Discovery(), false)); err != nil {
		t.Fatal(err)
	}
	c := fleet.Cluster{Name: "member", KubeconfigPath: sandboxtest.Kubeconfig(t), Source: "test"}
	fu := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "resume"}, Spec: v1alpha1.FleetUpgradeSpec{Version: "1.24.2"}}
	args, err := upgradeArgs(t.Context(), c, fu)
	if err != nil || strings.Contains(strings.Join(args, " "), "--from") {
		t.Fatalf("before the member's MeshUpgrade exists: %v %v", args, err)
	}
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: fleet.MemberUpgradeName("resume")},
		Spec: v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2", Strategy: v1alpha1.Strategy{Parallelism: 1, Waves: []v1alpha1.WaveSize{{Count: 1}}}}}
	if _, err := store.Create(t.Context(), mu); err != nil {
		t.Fatal(err)
	}
	args, err = upgradeArgs(t.Context(), c, fu)
	if err != nil || !strings.Contains(strings.Join(args, " "), "--name fleet-resume --from 1-23-2") {
		t.Fatalf("resume args = %v (%v), want --from 1-23-2", args, err)
	}
}
