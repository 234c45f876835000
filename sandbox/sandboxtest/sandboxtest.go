// Package sandboxtest gives a test package one real sandbox control plane, started in TestMain
// and torn down when the tests end, so integration tests talk to a genuine kube-apiserver (with
// scheduler, controller-manager and kwok-faked nodes) without sharing state with other packages.
//
//	func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(10))) }
//
//	func TestX(t *testing.T) { cs := kubernetes.NewForConfigOrDie(sandboxtest.Config(t)) … }
//
// Unless WithAPIOnly, the sandbox runs real istiod (package sandbox/istiod) for every Istio
// revision a test installs: Main runs the istiod runner in the test binary, so every istiod pod
// gets a pilot-discovery process bound to its address, answering Istio's webhooks exactly as
// rendered. On a host that cannot route the pod range to lo (no CAP_NET_ADMIN) the sandbox runs
// with no istiod; Main prints why, and Istiod skips the tests that need it, saying why.
//
// The sandbox's directory is published in MESHROLL_SANDBOX_DIR. When that variable is already set
// before Main runs, Main reuses (and if needed starts) that sandbox and leaves it running, which
// makes iterating on a test fast: `MESHROLL_SANDBOX_DIR=/tmp/sb go test ./...`. Binaries come from
// MESHROLL_SANDBOX_BIN or sandbox.EnsureBinaries. With -short no sandbox is started and tests
// calling Config are skipped.
package sandboxtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/sandbox"
)

// Budgets: Up may include the one-time source build of the binaries (~10 minutes on two cores).
const (
	upTimeout   = 20 * time.Minute
	downTimeout = 2 * time.Minute
)

// ownerFile records the pid of the test binary that owns a temporary sandbox, so a later run can
// stop sandboxes whose owner was killed (by -timeout or kill -9) before it could tear them down.
const ownerFile = "owner.pid"

// dirPattern names temporary sandbox directories.
const dirPattern = "meshroll-sandbox-*"

// settings are the choices Options make.
type settings struct {
	nodes   int
	out     io.Writer
	apiOnly bool
	delay   sandbox.PodStartDelay
}

// Option changes how Main starts the sandbox.
type Option func(*settings)

// WithNodes asks for n fake nodes instead of sandbox.DefaultNodes.
func WithNodes(n int) Option { return func(s *settings) { s.nodes = n } }

// WithAPIOnly starts only etcd and kube-apiserver (see sandbox.Options.APIOnly).
func WithAPIOnly() Option { return func(s *settings) { s.apiOnly = true } }

// WithPodStartDelay makes pods take d to start (see sandbox.PodStartDelay),
// for tests and benchmarks of rollout timing; others keep kwok's instant start.
func WithPodStartDelay(d sandbox.PodStartDelay) Option {
	return func(s *settings) { s.delay = d }
}

// WithOut sends the sandbox's progress lines to w instead of stderr.
func WithOut(w io.Writer) Option { return func(s *settings) { s.out = w } }

// Main starts a sandbox, runs the tests and stops the sandbox, returning the exit code for
// os.Exit. Setup failures are printed and yield exit code 1.
func Main(m *testing.M, opts ...Option) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		return m.Run()
	}
	s := settings{out: os.Stderr}
	for _, o := range opts {
		o(&s)
	}
	dir, owned, err := prepareDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxtest:", err)
		return 1
	}
	stop := func() error {
		if !owned {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
		defer cancel()
		return sandbox.Down(ctx, dir)
	}
	// An interrupted `go test` must not leave a control plane behind.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			_ = stop()
			os.Exit(130)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	st, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Nodes: s.nodes, Out: s.out, APIOnly: s.apiOnly, PodStartDelay: s.delay, AllowNoIstiod: true})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandboxtest: failed to start sandbox %q: %v\n", dir, err)
		_ = stop()
		return 1
	}
	runCtx, stopRunner := context.WithCancel(context.Background())
	if err := startIstiod(runCtx, st, s.apiOnly); err != nil {
		stopRunner()
		fmt.Fprintf(os.Stderr, "sandboxtest: %v\n", err)
		_ = stop()
		return 1
	}
	code := m.Run()
	stopRunner()
	runner.wait()
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "sandboxtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if owned {
		if code == 0 {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintf(os.Stderr, "sandboxtest: sandbox logs kept in %s\n", filepath.Join(dir, "logs"))
		}
	}
	return code
}

// prepareDir returns the sandbox directory and whether this process owns (and must stop) it. It
// first reaps temporary sandboxes whose owning test binary is gone.
func prepareDir() (string, bool, error) {
	if dir := os.Getenv(sandbox.EnvDir); dir != "" {
		return dir, false, nil
	}
	reapOrphans(os.TempDir())
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return "", false, fmt.Errorf("failed to create sandbox directory %q: %w", dirPattern, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", false, fmt.Errorf("failed to write owner file %q: %w", ownerFile, err)
	}
	if err := os.Setenv(sandbox.EnvDir, dir); err != nil {
		return "", false, fmt.Errorf("failed to set %q: %w", sandbox.EnvDir, err)
	}
	return dir, true, nil
}

// reapOrphans stops and removes temporary sandboxes left by test binaries that died.
func reapOrphans(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPattern))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || ownerAlive(pid) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
		if sandbox.Down(ctx, dir) == nil {
			_ = os.RemoveAll(dir)
		}
		cancel()
	}
}

// ownerAlive probes pid with signal 0.
func ownerAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Dir returns the directory of the package's sandbox, failing the test when Main did not start
// one (and skipping it under -short).
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv(sandbox.EnvDir)
	switch {
	case dir != "":
		return dir
	case testing.Short():
		tb.Skip("sandbox not started in -short mode")
	default:
		tb.Fatalf("no sandbox: call sandboxtest.Main from TestMain (or set %s)", sandbox.EnvDir)
	}
	return ""
}

// Kubeconfig returns the path of the sandbox's admin kubeconfig, for tools and code that take a
// file (Helm, kubectl, the meshroll CLI).
func Kubeconfig(tb testing.TB) string {
	tb.Helper()
	return sandbox.KubeconfigPath(Dir(tb))
}

// Config returns an admin client configuration for the sandbox, with rate limits raised because
// the sandbox is local and tests create many objects.
func Config(tb testing.TB) *rest.Config {
	tb.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", Kubeconfig(tb))
	if err != nil {
		tb.Fatalf("failed to load sandbox kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg
}
