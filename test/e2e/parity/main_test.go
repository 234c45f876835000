// Package parity puts meshroll side by side with istioctl, built from Istio's
// own source (sandbox.EnsureIstioctl), on one sandbox: whatever meshroll
// writes for a revision tag must be what istioctl writes, field by field
// after the API server's defaulting, so that istioctl's lifecycle commands
// (tag set/remove, uninstall --purge) treat both alike. It has a sandbox of
// its own because it moves the default tag and the default validator.
package parity

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2))) }

// istioctlBuildTimeout bounds one cold istioctl build; `make test` prebuilds
// them (meshroll sandbox build --istioctl), so a test normally waits not at all.
const istioctlBuildTimeout = 15 * time.Minute

// env is one test's view of the sandbox.
type env struct {
	cfg  *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
	meta metadata.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the sandbox (run without -short)")
	}
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.QPS, cfg.Burst = 100, 200
	e := &env{cfg: cfg}
	var err error
	if e.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.meta, err = metadata.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	istiodtest.Start(t)
	return e
}

func (e *env) controlplane() controlplane.Clients {
	return controlplane.Clients{Kube: e.kube, Dynamic: e.dyn}
}

func (e *env) snapshot(t *testing.T) *inventory.Snapshot {
	t.Helper()
	s, err := inventory.Read(t.Context(), inventory.Clients{Kube: e.kube, Meta: e.meta}, time.Now())
	if err != nil {
		t.Fatalf("inventory.Read: %v", err)
	}
	return s
}

// install installs the revision of version (named as meshroll names it)
// and returns the revision name; installing again is a quick no-op apply,
// so each test asks for what it needs.
func (e *env) install(t *testing.T, version string) string {
	t.Helper()
	start := time.Now()
	res, err := controlplane.Install(t.Context(), e.controlplane(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: version}})
	if err != nil {
		t.Fatalf("install istio %s: %v", version, err)
	}
	t.Logf("installed revision %s in %s", res.Revision, time.Since(start).Round(time.Millisecond))
	return res.Revision
}

// setTag runs meshroll's tag set for tag -> rev, moving it if needed.
func (e *env) setTag(t *testing.T, tag, rev string) *controlplane.TagResult {
	t.Helper()
	res, err := controlplane.SetTag(t.Context(), e.controlplane(), controlplane.TagOptions{
		Tag: tag, Revision: rev, Overwrite: true, Snapshot: e.snapshot(t)})
	if err != nil {
		t.Fatalf("meshroll tag set %s --revision %s: %v", tag, rev, err)
	}
	return res
}

// meshroll runs meshroll's CLI in-process against the sandbox.
func meshroll(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), append(args, "--kubeconfig", sandboxtest.Kubeconfig(t)), &out, &errOut)
	if code != 0 {
		t.Fatalf("meshroll %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// meshrollAnyExit runs a meshroll command whose exit code grades what it
// found (0, 1 or 2) and returns its stdout.
func meshrollAnyExit(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), append(args, "--kubeconfig", sandboxtest.Kubeconfig(t)), &out, &errOut)
	if code > 2 || out.Len() == 0 {
		t.Fatalf("meshroll %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// istioctl is one istioctl binary built from its release's module.
type istioctl struct {
	version, bin string
}

// builtIstioctl returns istioctl of version, building it if the prebuild
// step did not (which the log says, with the time it took).
func builtIstioctl(t *testing.T, version string) istioctl {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), istioctlBuildTimeout)
	defer cancel()
	start := time.Now()
	var log bytes.Buffer
	bin, err := sandbox.EnsureIstioctl(ctx, version, &log)
	if err != nil {
		t.Fatalf("build istioctl %s: %v", version, err)
	}
	if log.Len() > 0 {
		t.Logf("istioctl %s was not prebuilt (run `meshroll sandbox build --istioctl`); built in %s:\n%s",
			version, time.Since(start).Round(time.Second), log.String())
	}
	return istioctl{version: version, bin: bin}
}

// run runs istioctl against the sandbox and returns its stdout; a non-zero
// exit fails the test with both streams.
func (c istioctl) run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.try(t, args...)
	if err != nil {
		t.Fatalf("istioctl %s %s: %v\nstdout: %s\nstderr: %s", c.version, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// try runs istioctl and returns stdout, stderr and the exit error.
func (c istioctl) try(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--kubeconfig", sandboxtest.Kubeconfig(t))...)
	// istioctl keeps its defaults in $HOME/.istioctl; a test must not read
	// or leave any.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "ISTIOCTL_XDS_ADDRESS=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	t.Logf("istioctl %s %s: %s, err=%v", c.version, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err)
	return out.String(), errOut.String(), err
}
