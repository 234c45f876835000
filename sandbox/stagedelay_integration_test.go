//go:build linux

package sandbox_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/sandbox"
)

// TestPodStartDelayHoldsPodsBack starts a sandbox whose pods take 3–4 s to
// start and checks with real kwok that every pod of a Deployment becomes
// Ready no sooner, then that an Up without the delay restarts kwok.
func TestPodStartDelayHoldsPodsBack(t *testing.T) {
	bins := binDir(t)
	dir := filepath.Join(t.TempDir(), "sb")
	t.Cleanup(func() { _ = sandbox.Down(context.Background(), dir) })
	delay := sandbox.PodStartDelay{Min: 3 * time.Second, Max: 4 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	st, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, BinDir: bins, Nodes: 1, Out: testWriter{t}, PodStartDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	if st.PodStartDelay != "3s-4s" {
		t.Errorf("state records pod start delay %q, want 3s-4s", st.PodStartDelay)
	}
	cfg, err := st.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, deployment("slow", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	waitFor(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=slow"})
		if err != nil {
			return false, err
		}
		pods = list.Items
		ready := 0
		for _, p := range pods {
			if readyAt(&p) != nil {
				ready++
			}
		}
		return ready == 3 && len(pods) == 3, nil
	})
	for _, p := range pods {
		// Both timestamps are whole seconds, so allow one second of rounding.
		took := readyAt(&p).Sub(p.CreationTimestamp.Time)
		if took < delay.Min-time.Second {
			t.Errorf("pod %s Ready %s after creation, want ≥ %s (the start delay)", p.Name, took, delay.Min)
		}
		t.Logf("MEASURE pod %s Ready %s after creation (delay %s)", p.Name, took, delay)
	}

	before := pids(st)["kwok"]
	again, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, BinDir: bins, Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if pids(again)["kwok"] == before || again.PodStartDelay != "" {
		t.Errorf("Up without a delay kept kwok %d (now %d) and delay %q; want it restarted with none", before, pids(again)["kwok"], again.PodStartDelay)
	}
}

// readyAt is when p's Ready condition turned true, or nil.
func readyAt(p *corev1.Pod) *time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return &c.LastTransitionTime.Time
		}
	}
	return nil
}
