//go:build linux

package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/sandbox"
)

// fakeInjectorEnv turns the test binary into a stand-in injector: it records what it was given
// and listens on its port until stopped.
const fakeInjectorEnv = "SANDBOX_TEST_FAKE_INJECTOR"

func TestMain(m *testing.M) {
	if os.Getenv(fakeInjectorEnv) == "1" {
		os.Exit(fakeInjector())
	}
	os.Exit(m.Run())
}

func fakeInjector() int {
	dir := os.Getenv(sandbox.EnvDir)
	env := os.Getenv("KUBECONFIG") + " " + dir
	if err := os.WriteFile(filepath.Join(dir, "injector-env"), []byte(env), 0o644); err != nil {
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv(sandbox.EnvRunnerPort))
	if err != nil {
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		_ = c.Close()
	}
}

// binDir returns the sandbox binaries, building them if needed (only slow the very first time on
// a machine), and skips under -short.
func binDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real control plane")
	}
	dir, err := sandbox.EnsureBinaries(t.Context(), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

// up starts (or completes) the sandbox in dir and reports how long it took.
func up(t *testing.T, what, dir, bins string, nodes int) (*sandbox.State, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	st, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, BinDir: bins, Nodes: nodes, Out: testWriter{t}})
	took := time.Since(began)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("MEASURE %s: %s", what, took.Round(10*time.Millisecond))
	return st, took
}

func pids(st *sandbox.State) map[string]int {
	m := map[string]int{}
	for _, p := range st.Processes {
		m[p.Name] = p.PID
	}
	return m
}

func TestSandboxLifecycle(t *testing.T) {
	bins := binDir(t)
	dir := filepath.Join(t.TempDir(), "sb")
	t.Cleanup(func() { _ = sandbox.Down(context.Background(), dir) })

	st, took := up(t, "up (fresh directory, binaries cached)", dir, bins, 3)
	if took > 30*time.Second {
		t.Errorf("warm up took %s, want < 30s", took)
	}
	if !st.Healthy || st.NodesReady != 3 || len(st.Processes) != 5 {
		t.Fatalf("state after up = %+v", st)
	}

	t.Run("second up is a no-op", func(t *testing.T) {
		again, _ := up(t, "up (already running)", dir, bins, 0)
		if got, want := pids(again), pids(st); len(got) != len(want) || got["kube-apiserver"] != want["kube-apiserver"] || got["etcd"] != want["etcd"] {
			t.Errorf("processes changed: %v -> %v", want, got)
		}
		if again.NodesReady != 3 {
			t.Errorf("nodes ready = %d, want 3", again.NodesReady)
		}
	})

	cfg, err := st.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)

	t.Run("readyz and version", func(t *testing.T) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(t.Context())
		if err != nil || string(body) != "ok" {
			t.Errorf("/readyz = %q, %v", body, err)
		}
		v, err := cs.Discovery().ServerVersion()
		if err != nil || v.GitVersion != "v1.33.13" {
			t.Errorf("server version = %+v, %v", v, err)
		}
	})

	t.Run("deployment rolls out 10/10", func(t *testing.T) {
		began := time.Now()
		dep := deployment("web", 10)
		if _, err := cs.AppsV1().Deployments("default").Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
			d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 10 && d.Status.UpdatedReplicas == 10, err
		})
		t.Logf("MEASURE 10/10 rollout: %s", time.Since(began).Round(10*time.Millisecond))
	})

	t.Run("job completes", func(t *testing.T) {
		began := time.Now()
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "once"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
			}}},
		}
		if _, err := cs.BatchV1().Jobs("default").Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
			j, err := cs.BatchV1().Jobs("default").Get(ctx, "once", metav1.GetOptions{})
			return err == nil && j.Status.Succeeded == 1, err
		})
		t.Logf("MEASURE job completion: %s", time.Since(began).Round(10*time.Millisecond))
	})

	t.Run("up adds nodes", func(t *testing.T) {
		more, _ := up(t, "up (3 -> 5 nodes)", dir, bins, 5)
		if more.NodesReady != 5 {
			t.Errorf("nodes ready = %d, want 5", more.NodesReady)
		}
	})

	t.Run("up restarts killed components", func(t *testing.T) {
		before := pids(st)
		for _, name := range []string{"kube-scheduler", "kwok"} {
			if err := syscall.Kill(before[name], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, func(ctx context.Context) (bool, error) {
			s, err := sandbox.Status(ctx, dir)
			return err == nil && !s.Healthy, err
		})
		healed, _ := up(t, "up (scheduler and kwok killed)", dir, bins, 0)
		after := pids(healed)
		if after["kube-scheduler"] == before["kube-scheduler"] || after["kube-apiserver"] != before["kube-apiserver"] {
			t.Errorf("pids %v -> %v: want only the killed ones restarted", before, after)
		}
		if !healed.Healthy {
			t.Errorf("not healthy after heal: %+v", healed)
		}
	})

	t.Run("istiod runner gets its port and environment", func(t *testing.T) {
		t.Setenv(fakeInjectorEnv, "1") // inherited by the runner process: this test binary plays it
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		withInjector, err := sandbox.Up(ctx, sandbox.Options{
			Dir: dir, BinDir: bins, Out: testWriter{t}, Runner: []string{os.Args[0], "-test.run=^$"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := pids(withInjector)["istiod-runner"]; p == 0 || !withInjector.Healthy {
			t.Fatalf("istiod runner not running: %+v", withInjector)
		}
		got, err := os.ReadFile(filepath.Join(dir, "injector-env"))
		if want := withInjector.Kubeconfig + " " + dir; err != nil || string(got) != want {
			t.Errorf("injector saw %q, %v; want %q", got, err, want)
		}
	})

	t.Run("down stops everything, up starts again", func(t *testing.T) {
		var last *sandbox.State
		waitFor(t, 30*time.Second, func(ctx context.Context) (bool, error) {
			var err error
			last, err = sandbox.Status(ctx, dir)
			if err != nil {
				return false, err
			}
			return last.Healthy && last.NodesReady == 5 && len(last.Processes) == 6, fmt.Errorf("status %+v", last)
		})
		began := time.Now()
		if err := sandbox.Down(t.Context(), dir); err != nil {
			t.Fatal(err)
		}
		t.Logf("MEASURE down: %s", time.Since(began).Round(10*time.Millisecond))
		for name, pid := range pids(last) {
			if alive(pid) {
				t.Errorf("%s (pid %d) survived Down", name, pid)
			}
		}
		down, err := sandbox.Status(t.Context(), dir)
		if err != nil || down.Healthy {
			t.Errorf("status after down = %+v, %v", down, err)
		}
		if err := sandbox.Down(t.Context(), dir); err != nil {
			t.Errorf("second down: %v", err)
		}
		restarted, took := up(t, "up (after down, data kept)", dir, bins, 0)
		if took > 30*time.Second {
			t.Errorf("restart took %s, want < 30s", took)
		}
		rcs := kubernetes.NewForConfigOrDie(cfg)
		d, err := rcs.AppsV1().Deployments("default").Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Errorf("deployment lost across restart: %v", err)
		} else {
			t.Logf("deployment after restart: %d/%d ready", d.Status.ReadyReplicas, *d.Spec.Replicas)
		}
		if !restarted.Healthy {
			t.Errorf("restarted state = %+v", restarted)
		}
		if err := sandbox.Down(t.Context(), dir); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStatusOfUnknownSandbox(t *testing.T) {
	st, err := sandbox.Status(t.Context(), t.TempDir())
	if err != nil || st.Healthy || len(st.Processes) != 0 {
		t.Errorf("status = %+v, %v", st, err)
	}
	if err := sandbox.Down(t.Context(), t.TempDir()); err != nil {
		t.Errorf("down of unknown sandbox: %v", err)
	}
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
			},
		},
	}
}

func waitFor(t *testing.T, timeout time.Duration, done func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last error
	for {
		ok, err := done(ctx)
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met within %s (last error: %v)", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// alive reports whether pid exists and is not a zombie waiting for this test binary to reap it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
