// Package vm is the end-to-end test of VM proxies: ≥ 50 meshroll-agent
// processes, each with its own root directory and sidecar port, against the
// sandbox's API server, where their WorkloadEntries carry the assignment.
// It has a sandbox of its own.
package vm

import (
	"bytes"
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
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/vmagent"
	"github.com/meshroll/meshroll/internal/vmagent/vmagenttest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// TestMain starts an API-only sandbox (etcd and kube-apiserver): VMs need
// WorkloadEntries, RBAC and tokens, no nodes or pods.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithAPIOnly())) }

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
	f.applyRevisions()
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

// applyRevisions applies Istio's own charts (base with the WorkloadEntry
// CRD, istiod) for both versions. With no nodes nothing runs them, and
// nothing needs to: the VMs' sidecars are the stand-in, and meshroll needs
// the revisions to exist to allow an assignment.
func (f *fleet) applyRevisions() {
	t := f.t
	ap := controlplane.NewApplier(f.dyn, f.kube.Discovery(), false)
	if _, err := f.kube.CoreV1().Namespaces().Create(t.Context(), nsObject(istio.SystemNamespace), createOpts); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{fromVersion, toVersion} {
		start := time.Now()
		objs, err := istio.Render(t.Context(), istio.RenderOptions{Version: v, Revision: istio.RevisionName(v)})
		if err != nil {
			t.Fatalf("render %s: %v", v, err)
		}
		var crds, rest []*unstructured.Unstructured
		var names []string
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds, names = append(crds, o), append(names, o.GetName())
			} else {
				rest = append(rest, o)
			}
		}
		if _, err := ap.Apply(t.Context(), crds); err != nil {
			t.Fatalf("apply %s CRDs: %v", v, err)
		}
		if err := ap.WaitEstablished(t.Context(), names, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := ap.Apply(t.Context(), rest); err != nil {
			t.Fatalf("apply %s: %v", v, err)
		}
		t.Logf("applied %s (%d objects) in %s", v, len(objs), time.Since(start).Round(time.Millisecond))
	}
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
