package upgrade

import (
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

func TestDefaultFlushEveryScalesWithThePlan(t *testing.T) {
	for _, tc := range []struct {
		workloads int
		want      time.Duration
	}{
		{0, time.Second}, {199, time.Second}, {400, 2 * time.Second},
		{1000, 5 * time.Second}, {2000, 10 * time.Second}, {20000, 10 * time.Second},
	} {
		if got := defaultFlushEvery(tc.workloads); got != tc.want {
			t.Errorf("defaultFlushEvery(%d) = %s, want %s", tc.workloads, got, tc.want)
		}
	}
	mu := &v1alpha1.MeshUpgrade{}
	mu.Status.Workloads = make([]v1alpha1.WorkloadStatus, 1000)
	r := &run{Engine: &Engine{}, mu: mu}
	if got := r.flushEvery(); got != 5*time.Second {
		t.Errorf("engine flush interval for 1,000 workloads = %s, want 5s", got)
	}
	r.FlushEvery = time.Second
	if got := r.flushEvery(); got != time.Second {
		t.Errorf("Engine.FlushEvery set: interval %s, want it (1s)", got)
	}
}
