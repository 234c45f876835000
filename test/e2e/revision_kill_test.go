package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestRevisionInstallKilled kills `meshroll revision install` with SIGKILL
// once the CRDs are in and the intent record is written, then runs the same
// command again: it must complete, and remove must then clear the revision.
func TestRevisionInstallKilled(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	bin := filepath.Join(t.TempDir(), "meshroll")
	build := exec.Command("go", "build", "-o", bin, "github.com/meshroll/meshroll/cmd/meshroll")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build meshroll: %v", err)
	}
	const rev = "kill-1-24-2"
	args := []string{"revision", "install", "--version", "1.24.2", "--revision", rev,
		"--force", "--reason", "e2e: revision name differs from the release", "--kubeconfig", sandboxtest.Kubeconfig(t)}

	first := exec.Command(bin, args...)
	first.Stdout, first.Stderr = t.Output(), t.Output()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rec, found, err := controlplane.ReadRecord(t.Context(), e.kube, istio.SystemNamespace, rev)
		if err != nil {
			t.Fatal(err)
		}
		if found {
			if rec.State != controlplane.StateInstalling {
				t.Fatalf("install finished (record %s) before it could be killed", rec.State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no intent record within 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if rec, _, _ := controlplane.ReadRecord(t.Context(), e.kube, istio.SystemNamespace, rev); rec.State != controlplane.StateInstalling {
		t.Fatalf("after kill -9 the record says %q, want %q", rec.State, controlplane.StateInstalling)
	}

	second := exec.Command(bin, args...)
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("rerun after kill -9: %v\n%s", err, out)
	}
	rec, found, err := controlplane.ReadRecord(t.Context(), e.kube, istio.SystemNamespace, rev)
	if err != nil || !found || rec.State != controlplane.StateInstalled {
		t.Fatalf("after rerun: record %+v found=%t err=%v", rec, found, err)
	}
	if err := controlplane.WaitIstiod(t.Context(), e.kube, istio.SystemNamespace, rev, time.Minute); err != nil {
		t.Fatal(err)
	}

	remove := exec.Command(bin, "revision", "remove", rev, "--kubeconfig", sandboxtest.Kubeconfig(t))
	if out, err := remove.CombinedOutput(); err != nil {
		t.Fatalf("remove %s: %v\n%s", rev, err, out)
	}
	if _, found, _ := controlplane.ReadRecord(t.Context(), e.kube, istio.SystemNamespace, rev); found {
		t.Error("record still present after remove")
	}
}
