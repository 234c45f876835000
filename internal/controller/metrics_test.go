package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// TestMetricsCountEachFactOnce: the status is observed after every step
// and every outcome; a gate verdict or a rollout must count once, and the
// revision the run left must drop to 0 in the revision mix.
func TestMetricsCountEachFactOnce(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	at := metav1.NewTime(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	st := &v1alpha1.MeshUpgradeStatus{Phase: v1alpha1.PhaseMigrating,
		Workloads: []v1alpha1.WorkloadStatus{{Kind: "Deployment", Namespace: "a", Name: "w", Outcome: v1alpha1.OutcomeSucceeded, RolloutMillis: 1500},
			{Kind: "Deployment", Namespace: "a", Name: "x"}},
		Gates: []v1alpha1.GateResult{{Wave: 1, Name: "readiness", Passed: true, At: at}},
		Samples: []v1alpha1.Sample{{At: at, Pods: map[string]int{"1-23-2": 2}},
			{At: at, Pods: map[string]int{"1-24-2": 2}}},
	}
	m.Observe("u", "1-23-2", "1-24-2", st)
	m.Observe("u", "1-23-2", "1-24-2", st)
	if got := testutil.ToFloat64(m.Gates.WithLabelValues("u", "readiness", "pass")); got != 1 {
		t.Errorf("gate evaluations = %v after observing one verdict twice; want 1", got)
	}
	if n := testutil.CollectAndCount(m.Rollout); n != 1 {
		t.Errorf("%d rollout histogram(s); want 1", n)
	}
	if err := testutil.CollectAndCompare(m.Rollout, strings.NewReader(`
# HELP meshroll_workload_rollout_duration_seconds How long one workload's rollout to its new revision took.
# TYPE meshroll_workload_rollout_duration_seconds histogram
meshroll_workload_rollout_duration_seconds_bucket{le="0.5"} 0
meshroll_workload_rollout_duration_seconds_bucket{le="1"} 0
meshroll_workload_rollout_duration_seconds_bucket{le="2"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="4"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="8"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="16"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="32"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="64"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="128"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="256"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="512"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="1024"} 1
meshroll_workload_rollout_duration_seconds_bucket{le="+Inf"} 1
meshroll_workload_rollout_duration_seconds_sum 1.5
meshroll_workload_rollout_duration_seconds_count 1
`)); err != nil {
		t.Errorf("one rollout observed twice: %v", err)
	}
	if got := testutil.ToFloat64(m.Proxies.WithLabelValues("u", "1-24-2")); got != 1 {
		t.Errorf("proxies on the new revision = %v; want 1 (one workload succeeded)", got)
	}
	// The last sample lags the outcomes: the mix follows the outcomes, and
	// the revision the run left drops to 0.
	st.Workloads[1].Outcome = v1alpha1.OutcomeSucceeded
	st.Samples = st.Samples[:1]
	m.Observe("u", "1-23-2", "1-24-2", st)
	if got := testutil.ToFloat64(m.Proxies.WithLabelValues("u", "1-23-2")); got != 0 {
		t.Errorf("proxies on the old revision = %v; want 0 once every workload succeeded", got)
	}
	if got := testutil.ToFloat64(m.Proxies.WithLabelValues("u", "1-24-2")); got != 2 {
		t.Errorf("proxies on the new revision = %v; want 2 (the outcomes), not the lagging sample's 0", got)
	}
	st.Workloads[1].Outcome = ""
	m.Observe("u", "1-23-2", "1-24-2", st)
	if got := testutil.ToFloat64(m.Phase.WithLabelValues("u", "Migrating")); got != 1 {
		t.Errorf("phase Migrating = %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.Workloads.WithLabelValues("u", "succeeded")); got != 1 {
		t.Errorf("succeeded workloads = %v; want 1", got)
	}
	m.Forget("u")
	if n := testutil.CollectAndCount(m.Phase); n != 0 {
		t.Errorf("%d phase series left after Forget; want 0", n)
	}
}

func TestEventReason(t *testing.T) {
	for in, want := range map[string]string{"wave": "Wave", "Halted": "Halted", "": "Step", "gate": "Gate"} {
		if got := eventReason(in); got != want {
			t.Errorf("eventReason(%q) = %q; want %q", in, got, want)
		}
	}
}
