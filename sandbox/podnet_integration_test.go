//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/sandbox"
)

// TestPodAddressesUniqueAcrossRestart restarts a sandbox that keeps its pods
// (kwok forgets the addresses it gave out) and checks no two live pods share
// an address afterwards, which real processes bound to pod addresses need.
// In real-istiod mode it also checks the pod range is routed to lo exactly
// while the sandbox runs.
func TestPodAddressesUniqueAcrossRestart(t *testing.T) {
	bins := binDir(t)
	dir := filepath.Join(t.TempDir(), "sb")
	t.Cleanup(func() { _ = sandbox.Down(context.Background(), dir) })
	upReal := func(what string) *sandbox.State {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		st, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, BinDir: bins, Nodes: 2, Out: testWriter{t}, AllowNoIstiod: true})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if st.Istiod != sandbox.IstiodReal {
			t.Logf("NOTE no istiod on this host, so only address uniqueness is checked: %s", st.IstiodNote)
		}
		return st
	}
	routed := func(st *sandbox.State) bool {
		t.Helper()
		ok, err := sandbox.HasLocalRoute(t.Context(), st.PodRange)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	st := upReal("first up")
	if st.Istiod == sandbox.IstiodReal && (!st.PodRouted || !routed(st)) {
		t.Fatalf("real mode without a route to lo for %s: %+v", st.PodRange, st)
	}
	cfg, err := st.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	createPods(t, cs, "before", 6)
	firstBlock, firstRange := st.KwokBlock, st.PodRange

	if err := sandbox.Down(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if st.Istiod == sandbox.IstiodReal && routed(st) {
		t.Errorf("route of %s left behind after down", st.PodRange)
	}

	st = upReal("up after down, pods kept")
	if st.PodRange != firstRange {
		t.Errorf("pod range moved from %s to %s: old pods lose their addresses", firstRange, st.PodRange)
	}
	if st.KwokBlock == firstBlock {
		t.Errorf("kwok restarted in the block %s it used before", firstBlock)
	}
	t.Logf("kwok block %s -> %s in %s", firstBlock, st.KwokBlock, st.PodRange)
	createPods(t, cs, "after", 6)

	pods, err := cs.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	rng := netip.MustParsePrefix(st.PodRange)
	for _, p := range pods.Items {
		ip := p.Status.PodIP
		if prev, dup := owner[ip]; dup {
			t.Errorf("pods %s and %s share address %s", prev, p.Name, ip)
		}
		owner[ip] = p.Name
		if a, err := netip.ParseAddr(ip); err != nil || !rng.Contains(a) {
			t.Errorf("pod %s has address %q outside the pod range %s", p.Name, ip, st.PodRange)
		}
	}
	if len(owner) != 12 {
		t.Errorf("%d distinct addresses for 12 pods: %v", len(owner), owner)
	}

	if err := sandbox.Down(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if st.Istiod == sandbox.IstiodReal && routed(st) {
		t.Errorf("route of %s left behind after the last down", st.PodRange)
	}
}

// createPods creates n bare pods named prefix-i in default and waits until
// each has an address.
func createPods(t *testing.T, cs kubernetes.Interface, prefix string, n int) {
	t.Helper()
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
		}
		waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
			return err == nil, err
		})
	}
	waitFor(t, time.Minute, func(ctx context.Context) (bool, error) {
		for i := range n {
			p, err := cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("%s-%d", prefix, i), metav1.GetOptions{})
			if err != nil || p.Status.PodIP == "" {
				return false, err
			}
		}
		return true, nil
	})
}
