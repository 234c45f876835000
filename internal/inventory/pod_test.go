package inventory

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodTallyFolds(t *testing.T) {
	tally := newPodTally(nil)
	for i := range 1000 {
		tally.add(pod("ns", fmt.Sprintf("web-%d", i), "ReplicaSet", "web-1", "1-23-2", img123, corev1.PodRunning, nil))
	}
	tally.add(pod("ns", "done", "ReplicaSet", "web-1", "1-23-2", img123, corev1.PodSucceeded, nil))
	if tally.total != 1001 || len(tally.counts) != 1 {
		t.Fatalf("total = %d, keys = %d; want 1001 pods in 1 key", tally.total, len(tally.counts))
	}
	for _, c := range tally.counts {
		if c.pods != 1000 || c.terminated != 1 {
			t.Errorf("count = %+v, want 1000 running, 1 terminated", *c)
		}
	}
}

func TestProxyImageNativeSidecar(t *testing.T) {
	p := pod("ns", "x", "", "", "", "", corev1.PodRunning, nil)
	p.Spec.InitContainers = []corev1.Container{{Name: "istio-proxy", Image: img123}}
	if got := proxyContainer(p); got == nil || got.Image != img123 {
		t.Errorf("proxyContainer() = %v, want image %q", got, img123)
	}
}

// BenchmarkPodTally measures the per-pod cost of folding, the only work Read
// adds per pod on top of decoding it.
func BenchmarkPodTally(b *testing.B) {
	pods := make([]*corev1.Pod, 50_000)
	for i := range pods {
		pods[i] = pod(fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("p-%d", i), "ReplicaSet", fmt.Sprintf("rs-%d", i%5000), "1-23-2", img123, corev1.PodRunning,
			map[string]string{"app": "x"})
	}
	b.ReportAllocs()
	for b.Loop() {
		tally := newPodTally(nil)
		for _, p := range pods {
			tally.add(p)
		}
	}
}

// TestStatusRevisionRemembered: pods of one template share their
// sidecar.istio.io/status text, so its revision is decoded once; what is
// remembered gives the same answer as decoding, garbage included, and the
// memory stays bounded.
func TestStatusRevisionRemembered(t *testing.T) {
	e := &evidence{}
	for range 2 {
		if got := e.statusRevision(`{"revision":"canary"}`); got != "canary" {
			t.Errorf("statusRevision = %q, want canary", got)
		}
		if got := e.statusRevision(`{"revision":`); got != "" {
			t.Errorf("statusRevision of broken JSON = %q, want none", got)
		}
	}
	if len(e.statusRevs) != 2 {
		t.Errorf("remembered %d texts, want 2", len(e.statusRevs))
	}
	for i := range maxStatusRevs + 10 {
		e.statusRevision(fmt.Sprintf(`{"revision":"r%d"}`, i))
	}
	if len(e.statusRevs) > maxStatusRevs {
		t.Errorf("remembered %d texts, more than the bound %d", len(e.statusRevs), maxStatusRevs)
	}
	if got := e.statusRevision(`{"revision":"r1030"}`); got != "r1030" {
		t.Errorf("statusRevision past the bound = %q, want r1030", got)
	}
	var none *evidence
	if got := none.statusRevision(`{"revision":"x"}`); got != "x" {
		t.Errorf("nil evidence: statusRevision = %q, want x", got)
	}
}

// BenchmarkStatusRevision compares reading a sidecar's revision from its
// sidecar.istio.io/status annotation decoded every time (no evidence, the
// baseline) with the remembered reading Read uses.
func BenchmarkStatusRevision(b *testing.B) {
	const status = `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"1-23-2"}`
	for name, e := range map[string]*evidence{"decoded": nil, "remembered": {}} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e.statusRevision(status) != "1-23-2" {
					b.Fatal("wrong revision")
				}
			}
		})
	}
}
