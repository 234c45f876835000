package vm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// upgradeArgs are the `meshroll upgrade` arguments that move the seeded
// pods and the VMs together 1-23-2 → 1-24-2 (both revisions are installed
// already and no tag points at either).
func (f *fleet) upgradeArgs(name, waves string, extra ...string) []string {
	nss := strings.Join(append([]string{vmNamespace}, f.mesh...), ",")
	return append([]string{"upgrade", "--to", toVersion, "--from", fromRev, "--name", name, "--skip", "install,tags",
		"--namespace-only", nss, "--waves", waves}, extra...)
}

// meshUpgrade reads a MeshUpgrade's record.
func (f *fleet) meshUpgrade(name string) *v1alpha1.MeshUpgrade {
	f.t.Helper()
	mu, err := upgrade.Store{Dynamic: f.dyn}.Get(f.t.Context(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	return mu
}

// byKind counts a record's workloads of kind (or of every other kind when
// kind starts with "!") by wave and outcome: "1:Succeeded" → n.
func byKind(mu *v1alpha1.MeshUpgrade, kind string) map[string]int {
	out := map[string]int{}
	not, kind := strings.HasPrefix(kind, "!"), strings.TrimPrefix(kind, "!")
	for _, w := range mu.Status.Workloads {
		if (w.Kind == kind) != not {
			out[string(rune('0'+w.Wave))+":"+string(w.Outcome)]++
		}
	}
	return out
}

// proxyImages counts the seeded pods by istio-proxy image.
func (f *fleet) proxyImages() map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, ns := range f.mesh {
		pods, err := f.kube.CoreV1().Pods(ns).List(f.t.Context(), metav1.ListOptions{})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			img := "none"
			for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
				if c.Name == "istio-proxy" {
					img = c.Image
				}
			}
			out[img]++
		}
	}
	return out
}

// killMidWave runs `meshroll upgrade` as a process (this test binary
// re-executed as the CLI, see TestMain) and SIGKILLs it once the
// run has assigned a few VMs (wave 2 under way), then checks intent before
// write: every VM whose WorkloadEntry carries the run's assignment is in
// the MeshUpgrade's record with an outcome. It says where the kill landed.
func (f *fleet) killMidWave(args []string, name string) string {
	t := f.t
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "--kubeconfig", f.kubeconfig)...)
	cmd.Env = append(os.Environ(), asMeshroll+"=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Minute)
	assigned := 0
	for assigned < 3 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("meshroll upgrade assigned %d VMs in 4 minutes:\n%s", assigned, out.String())
		}
		time.Sleep(50 * time.Millisecond)
		assigned = 0
		for _, vm := range f.readVMs() {
			if vm.Upgrade == name {
				assigned++
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	recorded := map[string]v1alpha1.Outcome{}
	for _, w := range f.meshUpgrade(name).Status.Workloads {
		if w.Kind == upgrade.VMKind {
			recorded[w.Namespace+"/"+w.Name] = w.Outcome
		}
	}
	n := 0
	for _, vm := range f.readVMs() {
		if vm.Upgrade != name {
			continue
		}
		n++
		if recorded[vm.Ref()] == "" {
			t.Errorf("VM %s was assigned by %s but the MeshUpgrade records no intent for it (outcome %q)", vm.Ref(), name, recorded[vm.Ref()])
		}
	}
	return fmt.Sprintf("killed with %d VM(s) assigned, all recorded", n)
}
