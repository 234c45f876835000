// Package vm is the end-to-end test of VM proxies: ≥ 50 meshroll-agent
// processes, each with its own root directory and sidecar port, against the
// sandbox's API server, where their WorkloadEntries carry the assignment,
// beside a seeded mesh of pods injected by real istiod, both moved by
// `meshroll upgrade`. It has a sandbox of its own.
package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/vmagent"
	"github.com/meshroll/meshroll/internal/vmagent/vmagenttest"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// TestMain starts a full sandbox with two fake nodes: VMs need
// WorkloadEntries, RBAC and tokens; the pods moved in the same waves need
// nodes, the controllers and istiod's injection.
func TestMain(m *testing.M) {
	if os.Getenv(asMeshroll) == "1" {
		// Re-executed as the meshroll CLI: a run the test SIGKILLs must be
		// a process of its own, and this saves building cmd/meshroll.
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2)))
}

// asMeshroll set to 1 makes the test binary run as the meshroll CLI.
const asMeshroll = "MESHROLL_VM_E2E_AS_CLI"

const (
	fromVersion = "1.23.2"
	toVersion   = "1.24.2"
	fromRev     = "1-23-2"
	toRev       = "1-24-2"
	vmNamespace = "vms"
)

// fleet is the test's VMs, their agents and the artifact mirror.
type fleet struct {
	t          *testing.T
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	kubeconfig string
	mirror     *vmagenttest.Mirror
	good, bad  []byte // 1.24.2 artifacts: a release and a broken build
	agentBin   string
	vms        []*vmagenttest.VM
	agents     []*exec.Cmd
	// mesh are the seeded pods' namespaces, moved with the VMs.
	mesh []string
}

// meshroll runs the CLI in-process against the sandbox.
func (f *fleet) meshroll(args ...string) (string, int) {
	var out, errOut bytes.Buffer
	code := cli.Main(f.t.Context(), append(args, "--kubeconfig", f.kubeconfig), &out, &errOut)
	return out.String() + errOut.String(), code
}

// newFleet installs both revisions, builds the agent and the stand-in
// sidecar, onboards n VMs with `meshroll vm onboard` and starts their agents.
func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: needs the sandbox (run without -short)")
	}
	cfg := sandboxtest.Config(t)
	f := &fleet{t: t, kubeconfig: sandboxtest.Kubeconfig(t)}
	var err error
	if f.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if f.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	f.installRevisions()
	f.seedMesh()
	build := t.TempDir()
	bin, err := vmagenttest.BuildSidecar(build)
	if err != nil {
		t.Fatal(err)
	}
	if f.agentBin, err = vmagenttest.BuildAgent(build); err != nil {
		t.Fatal(err)
	}
	if f.mirror, err = vmagenttest.NewMirror(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.mirror.Stop)
	old, err := vmagenttest.Package(bin, fromVersion, false)
	if err != nil {
		t.Fatal(err)
	}
	f.mirror.Add(vmagenttest.PathFor(fromVersion), old)
	if f.good, err = vmagenttest.Package(bin, toVersion, false); err != nil {
		t.Fatal(err)
	}
	if f.bad, err = vmagenttest.Package(bin, toVersion, true); err != nil {
		t.Fatal(err)
	}
	f.mirror.Add(vmagenttest.PathFor(toVersion), f.good)
	if _, err := f.kube.CoreV1().Namespaces().Create(t.Context(), nsObject(vmNamespace), createOpts); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		f.onboard(i)
	}
	t.Logf("onboarded %d VMs with meshroll vm onboard in %s", n, time.Since(start).Round(time.Millisecond))
	t.Cleanup(f.stop)
	for i := range f.vms {
		f.startAgent(i)
	}
	return f
}

// installRevisions installs both revisions as `meshroll revision install`
// does, served by the sandbox's real istiod: the pods moved with the VMs
// are injected by it, and the VMs' release is read from its image.
func (f *fleet) installRevisions() {
	t := f.t
	istiodtest.Start(t)
	cp := controlplane.Clients{Kube: f.kube, Dynamic: f.dyn}
	for _, v := range []string{fromVersion, toVersion} {
		start := time.Now()
		if _, err := controlplane.Install(t.Context(), cp, controlplane.InstallOptions{Render: istio.RenderOptions{Version: v, Revision: istio.RevisionName(v)}}); err != nil {
			t.Fatalf("install %s: %v", v, err)
		}
		t.Logf("installed %s in %s", v, time.Since(start).Round(time.Millisecond))
	}
}

// seedMesh creates a small mesh of pods on the old revision, moved in the
// same waves as the VMs.
func (f *fleet) seedMesh() {
	t := f.t
	p, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "vmapp", Namespaces: 2, Workloads: 4, Revision: fromRev})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := demo.Apply(t.Context(), f.kube, p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := demo.WaitReady(ctx, f.kube, p); err != nil {
		t.Fatal(err)
	}
	f.mesh = p.NamespaceNames()
	t.Logf("seeded %d workloads in %s in %s", len(p.Workloads), strings.Join(f.mesh, ", "), time.Since(start).Round(time.Millisecond))
}

// onboard registers VM i and lays out its root from what onboard wrote.
func (f *fleet) onboard(i int) {
	t := f.t
	name := fmt.Sprintf("vm-%02d", i)
	out := filepath.Join(t.TempDir(), "onboard")
	if msg, code := f.meshroll("vm", "onboard", name, "-n", vmNamespace, "--address", fmt.Sprintf("10.99.0.%d", i+1),
		"--label", "app=vm", "--version", fromVersion, "--artifact-url", f.mirror.URL()+vmagenttest.ArtifactPath,
		"--token-ttl-hours", "2", "--out", out); code != 0 {
		t.Fatalf("vm onboard %s: exit %d: %s", name, code, msg)
	}
	var onboarded vmagent.Config
	b, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil || json.Unmarshal(b, &onboarded) != nil {
		t.Fatalf("onboard wrote no readable config.json: %v", err)
	}
	vm, err := vmagenttest.NewVM(filepath.Join(t.TempDir(), "root"), f.mirror)
	if err != nil {
		t.Fatal(err)
	}
	// The VM's paths are the test's; everything else is what onboard wrote.
	vm.Config.APIServer, vm.Config.Namespace, vm.Config.Name = onboarded.APIServer, onboarded.Namespace, onboarded.Name
	vm.Config.CAFile, vm.Config.TokenFile = filepath.Join(out, "ca.crt"), filepath.Join(out, "token")
	vm.Config.BaseDir = filepath.Join(out, "base")
	vm.Config.Poll, vm.Config.Heartbeat = vmagent.Duration(300*time.Millisecond), vmagent.Duration(3*time.Second)
	// 15 s, not vmagenttest's 5 s: with ~30 runnable threads per core a new
	// sidecar took longer than 5 s to answer for its version once, and its
	// agent (rightly) rolled it back (the default is 60 s).
	vm.Config.Ready = vmagent.Duration(15 * time.Second)
	if err := vm.WriteConfig(); err != nil {
		t.Fatal(err)
	}
	f.vms = append(f.vms, vm)
	f.agents = append(f.agents, nil)
}

func (f *fleet) startAgent(i int) {
	log, err := os.Create(filepath.Join(f.vms[i].Config.Root, "agent.log"))
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(f.agentBin, "-config", f.vms[i].ConfigPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.agents[i] = cmd
}

// stop ends the agents and their sidecars (processes this test started).
func (f *fleet) stop() {
	for i, a := range f.agents {
		if a != nil {
			_ = a.Process.Kill()
			_ = a.Wait()
		}
		_ = vmagent.Stop(f.t.Context(), f.vms[i].Config)
	}
}

// readVMs is what meshroll sees.
func (f *fleet) readVMs() []inventory.VMProxy {
	vms, err := inventory.ReadVMs(f.t.Context(), f.dyn)
	if err != nil {
		f.t.Fatal(err)
	}
	return vms
}

// waitAll waits until every VM reports Ready on a.
func (f *fleet) waitAll(a vmagent.Assignment, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		vms, ok := f.readVMs(), 0
		for _, vm := range vms {
			if vm.HealthyOn(a) {
				ok++
			}
		}
		if ok == len(f.vms) && len(vms) == len(f.vms) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d VMs Ready on %s after %s", ok, len(f.vms), a, d)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// serving is what VM i's sidecar answers ("" when nothing does).
func serving(addr string) string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(strings.TrimPrefix(string(b), "hello from "))
}
