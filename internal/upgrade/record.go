package upgrade

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Caps keep the MeshUpgrade object far below etcd's 1.5 MB limit however
// long a run is.
const (
	maxHistory = 300
	maxSamples = 240
)

// flush writes the status when it changed, at most every FlushEvery unless
// force: per-workload outcomes are batched because a lost batch is harmless
// (the next run finds the restart token on each workload and records it
// without restarting anything).
func (r *run) flush(ctx context.Context, force bool) error {
	if r.pending != nil {
		// A failed background write (e.g. cancelled with the run) leaves
		// the status dirty; this write carries it.
		_ = r.landFlush(<-r.pending)
	}
	if !r.dirty || (!force && time.Since(r.lastFlush) < r.flushEvery()) {
		return nil
	}
	st := &r.mu.Status
	st.Counts = v1alpha1.Tally(st.Workloads)
	r.sample()
	fresh, err := r.updateStatus(ctx, r.mu)
	if err != nil {
		return err
	}
	// Keep our status object (callers hold pointers into it) but take the
	// fresh spec and metadata: an operator may have requested a rollback,
	// and the next write needs the new resourceVersion.
	r.mu.ObjectMeta, r.mu.Spec = fresh.ObjectMeta, fresh.Spec
	r.dirty = false
	r.lastFlush = time.Now()
	return nil
}

// flushDone is the outcome of a background status write.
type flushDone struct {
	fresh *v1alpha1.MeshUpgrade
	err   error
}

// flushAsync starts writing a copy of the status in the background, so the
// moves waiting on the main loop are not held up by a large status write.
// At most one write is in flight; the next synchronous flush waits for it.
func (r *run) flushAsync(ctx context.Context) {
	if r.pending != nil || !r.dirty || time.Since(r.lastFlush) < r.flushEvery() {
		return
	}
	r.mu.Status.Counts = v1alpha1.Tally(r.mu.Status.Workloads)
	r.sample()
	snapshot := r.mu.DeepCopy()
	r.dirty, r.lastFlush = false, time.Now()
	done := make(chan flushDone, 1)
	go func() {
		fresh, err := r.updateStatus(ctx, snapshot)
		done <- flushDone{fresh: fresh, err: err}
	}()
	r.pending = done
}

// landFlush takes the result of a background write: the fresh metadata (the
// next write's resourceVersion) and spec.
func (r *run) landFlush(d flushDone) error {
	r.pending = nil
	if d.err != nil {
		r.dirty = true
		return d.err
	}
	r.mu.ObjectMeta, r.mu.Spec = d.fresh.ObjectMeta, d.fresh.Spec
	return nil
}

// sample appends the revision mix when it changed since the last sample.
// Pods are counted from the plan (each workload's pods on From until it
// succeeded, on To after), which is what the run controls; other workloads are
// not part of the mix.
func (r *run) sample() {
	st := &r.mu.Status
	mix := map[string]int{}
	for _, w := range st.Workloads {
		rev := r.mu.Spec.From
		if w.Outcome == v1alpha1.OutcomeSucceeded {
			rev = r.mu.Spec.To
		}
		mix[rev] += max(w.Pods, 1)
	}
	if n := len(st.Samples); n > 0 && sameMix(st.Samples[n-1].Pods, mix) {
		return
	}
	st.Samples = append(st.Samples, v1alpha1.Sample{At: metav1.NewTime(r.now()), Pods: mix})
	if len(st.Samples) > maxSamples {
		// Thin the older half so the chart keeps its whole time range.
		kept := st.Samples[:0:0]
		for i, s := range st.Samples {
			if i >= len(st.Samples)/2 || i%2 == 0 {
				kept = append(kept, s)
			}
		}
		st.Samples = kept
	}
}

func sameMix(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// event appends a history entry and tells the observer.
func (r *run) event(typ string, wave int, msg string) {
	st := &r.mu.Status
	e := v1alpha1.Event{At: metav1.NewTime(r.now()), Type: typ, Wave: wave, Message: msg}
	st.History = append(st.History, e)
	if len(st.History) > maxHistory {
		st.History = append(st.History[:0:0], st.History[len(st.History)-maxHistory:]...)
	}
	r.dirty = true
	if r.Observer != nil {
		r.Observer.Event(e)
	}
}

func (r *run) progress() {
	if r.Observer != nil {
		r.mu.Status.Counts = v1alpha1.Tally(r.mu.Status.Workloads)
		r.Observer.Progress(&r.mu.Status)
	}
}
