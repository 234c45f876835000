package vmagent_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/internal/vmagent"
	"github.com/meshroll/meshroll/internal/vmagent/vmagenttest"
)

// artifacts are the fixture versions, built and packaged once in TestMain,
// and agentBinary is meshroll-agent built from this tree.
var (
	artifacts   = map[string][]byte{}
	agentBinary string
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "vmagent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !testing.Short() {
		if err := packageVersions(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Versions the fixture mirror publishes: two good releases and a broken one
// (readiness answers 503).
const (
	oldVersion    = "1.23.2"
	newVersion    = "1.24.2"
	brokenVersion = "1.25.0"
)

var (
	oldRev    = vmagent.Assignment{Revision: "1-23-2", Version: oldVersion}
	newRev    = vmagent.Assignment{Revision: "1-24-2", Version: newVersion}
	brokenRev = vmagent.Assignment{Revision: "1-25-0", Version: brokenVersion}
)

// newMirror serves the three fixture versions.
func newMirror(t testing.TB) *vmagenttest.Mirror {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs the stand-in sidecar build")
	}
	m, err := vmagenttest.NewMirror()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	for v, art := range artifacts {
		m.Add(vmagenttest.PathFor(v), art)
	}
	return m
}

func packageVersions(dir string) error {
	bin, err := vmagenttest.BuildSidecar(dir)
	if err != nil {
		return err
	}
	for _, v := range []string{oldVersion, newVersion, brokenVersion} {
		if artifacts[v], err = vmagenttest.Package(bin, v, v == brokenVersion); err != nil {
			return err
		}
	}
	agentBinary, err = vmagenttest.BuildAgent(dir)
	return err
}

// fixture is one VM whose agent runs in the test process (its sidecar is a
// real detached process).
type fixture struct {
	t     testing.TB
	vm    *vmagenttest.VM
	agent *vmagent.Agent
}

func newFixture(t testing.TB, m *vmagenttest.Mirror, edit ...func(*vmagent.Config)) *fixture {
	t.Helper()
	return newFixtureAt(t, t.TempDir(), m, edit...)
}

// newFixtureAt lays the VM out in root.
func newFixtureAt(t testing.TB, root string, m *vmagenttest.Mirror, edit ...func(*vmagent.Config)) *fixture {
	t.Helper()
	vm, err := vmagenttest.NewVM(root, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(&vm.Config)
	}
	if err := vm.WriteConfig(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, vm: vm}
	f.restartAgent()
	t.Cleanup(func() { _ = vmagent.Stop(context.Background(), vm.Config) })
	return f
}

// restartAgent builds a fresh agent from the config on disk, as a restarted
// daemon would.
func (f *fixture) restartAgent() {
	f.t.Helper()
	cfg, err := vmagent.LoadConfig(f.vm.ConfigPath)
	if err != nil {
		f.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if f.agent, err = vmagent.New(cfg, "test", log); err != nil {
		f.t.Fatal(err)
	}
	if err := f.agent.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// assign writes the override file and runs the agent once.
func (f *fixture) assign(a vmagent.Assignment) map[string]string {
	f.t.Helper()
	if err := f.vm.Override(a); err != nil {
		f.t.Fatal(err)
	}
	f.agent.Once(context.Background())
	return f.agent.Status()
}

// serving is the version the sidecar's port answers with, or "" when nothing answers.
func (f *fixture) serving() string {
	resp, err := http.Get("http://" + f.vm.Addr + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(strings.TrimPrefix(string(b), "hello from "))
}

// slots lists versions/ (what is installed on the VM).
func (f *fixture) slots() []string {
	entries, _ := os.ReadDir(filepath.Join(f.vm.Config.Root, "versions"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// expect checks a reported phase, running version and error substring.
func (f *fixture) expect(st map[string]string, phase vmagent.Phase, running, errPart string) {
	f.t.Helper()
	if st[vmagent.AnnotationPhase] != string(phase) || st[vmagent.AnnotationVersion] != running ||
		!strings.Contains(st[vmagent.AnnotationError], errPart) || (errPart == "") != (st[vmagent.AnnotationError] == "") {
		f.t.Fatalf("status = %v, want phase %s running %s error containing %q", st, phase, running, errPart)
	}
	if got := f.serving(); got != running {
		f.t.Fatalf("sidecar serves %q, want %q", got, running)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
