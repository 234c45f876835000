package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// podStarts watches the pods of namespaces with a prefix and records, for
// each pod created after the watch began, how long it took from being seen
// created to being seen Ready: the part of a rollout no scheduler of
// rollouts can shorten (scheduling, the kwok start delay, the status write).
type podStarts struct {
	mu     sync.Mutex
	since  time.Time
	added  map[types.UID]time.Time
	byWork map[string]time.Duration // "namespace/app" → slowest new pod's start
}

// watchPodStarts runs until ctx ends.
func watchPodStarts(ctx context.Context, tb testing.TB, kube kubernetes.Interface, prefix string) *podStarts {
	tb.Helper()
	ps := &podStarts{since: time.Now(), added: map[types.UID]time.Time{}, byWork: map[string]time.Duration{}}
	f := informers.NewSharedInformerFactory(kube, 0)
	inf := f.Core().V1().Pods().Informer()
	observe := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if ok && strings.HasPrefix(p.Namespace, prefix) {
			ps.observe(p, time.Now())
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		tb.Fatal("pod watch never synced")
	}
	return ps
}

func (ps *podStarts) observe(p *corev1.Pod, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	first, seen := ps.added[p.UID]
	if !seen {
		if p.CreationTimestamp.Time.Before(ps.since.Truncate(time.Second)) || podReady(p) {
			ps.added[p.UID] = time.Time{} // there before the watch: not measured
			return
		}
		ps.added[p.UID], first = now, now
	}
	if first.IsZero() || !podReady(p) {
		return
	}
	ps.added[p.UID] = time.Time{} // measured once
	key := p.Namespace + "/" + p.Labels["app"]
	ps.byWork[key] = max(ps.byWork[key], now.Sub(first))
}

// starts returns the slowest new pod's start per "namespace/app".
func (ps *podStarts) starts() map[string]time.Duration {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make(map[string]time.Duration, len(ps.byWork))
	for k, v := range ps.byWork {
		out[k] = v
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waveBound is the shortest time any scheduler could move the waves in,
// running at most parallelism rollouts at once and finishing each wave
// before the next (meshroll's safety rule): a wave lasts at least its slowest
// rollout and at least the sum of its rollouts shared among the slots, and
// a rollout lasts at least its new pod's start. waves[i] lists the start of
// every workload of wave i.
func waveBound(waves [][]time.Duration, parallelism int) time.Duration {
	var total time.Duration
	for _, w := range waves {
		var sum, slowest time.Duration
		for _, d := range w {
			sum += d
			slowest = max(slowest, d)
		}
		total += max(slowest, sum/time.Duration(max(parallelism, 1)))
	}
	return total
}
