package upgrade

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestKilledAndResumed runs the real `meshroll upgrade` process and kills it
// with SIGKILL at ten random moments; the same command rerun converges: every
// pod on 1.24.2, every Deployment restarted exactly once, none left behind.
func TestKilledAndResumed(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "killed", Namespaces: 6, Workloads: 200})
	nss := p.NamespaceNames()
	bin := buildMeshroll(t)
	args := []string{"upgrade", "--to", toVersion, "--from", fromRev, "--name", "killed",
		"--skip", "install,gateways,tags", "--namespace-only", strings.Join(nss, ","),
		"--waves", "10,25%,100%", "--parallelism", "10", "--kubeconfig", sandboxtest.Kubeconfig(t)}

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	kills := 0
	for kills < 10 {
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		after := time.Duration(300+rng.IntN(2700)) * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("meshroll upgrade finished before kill %d (after < %s): %v\n%s", kills+1, after, err, out.String())
		case <-time.After(after):
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		kills++
		mu, err := e.store().Get(t.Context(), "killed")
		if err == nil {
			t.Logf("kill %d after %s: phase %s, %d/%d moved", kills, after, mu.Status.Phase, mu.Status.Counts.Succeeded, mu.Status.Counts.Total)
		} else {
			t.Logf("kill %d after %s: no MeshUpgrade yet", kills, after)
		}
	}
	final := exec.Command(bin, args...)
	out, err := final.CombinedOutput()
	if err != nil {
		t.Fatalf("rerun after %d kills: %v\n%s", kills, err, out)
	}
	mu, err := e.store().Get(t.Context(), "killed")
	if err != nil {
		t.Fatal(err)
	}
	if mu.Status.Phase != v1alpha1.PhaseSucceeded || mu.Status.Counts.Succeeded != len(p.Workloads) {
		t.Fatalf("after kills and rerun: phase %s, counts %+v", mu.Status.Phase, mu.Status.Counts)
	}
	if imgs := e.waitPodsSettled(t, nss, len(p.Workloads)); imgs[toImage] != len(p.Workloads) || len(imgs) != 1 {
		t.Errorf("pods by proxy image: %s; want all %d on %s", describe(imgs), len(p.Workloads), toImage)
	}
	for d, n := range e.replicaSets(t, nss) {
		if n != 2 {
			t.Errorf("Deployment %s has %d ReplicaSets, want 2: restarted more than once or never", d, n)
		}
	}
}

// buildMeshroll builds the CLI once per test.
func buildMeshroll(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshroll")
	build := exec.Command("go", "build", "-o", bin, "github.com/meshroll/meshroll/cmd/meshroll")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build meshroll: %v", err)
	}
	return bin
}
