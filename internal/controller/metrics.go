package controller

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// phases lists every phase, so the phase gauge reads 1 for the current one
// and 0 for the others (a query for `== 1` needs no absent-series logic).
var phases = []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhaseMigrating, v1alpha1.PhaseGating, v1alpha1.PhaseBaking,
	v1alpha1.PhasePaused, v1alpha1.PhaseRollingBack, v1alpha1.PhaseSucceeded, v1alpha1.PhaseHalted, v1alpha1.PhaseRolledBack}

// Metrics are the controller's own series, served on /metrics beside
// controller-runtime's. They are computed from the MeshUpgrade status the
// engine records, so a failed-over controller reports the same numbers.
type Metrics struct {
	Phase     *prometheus.GaugeVec
	Workloads *prometheus.GaugeVec
	Proxies   *prometheus.GaugeVec
	Gates     *prometheus.CounterVec
	Rollout   prometheus.Histogram
	Reconcile prometheus.Histogram

	mu sync.Mutex
	// counted remembers, per upgrade, which gate verdicts and workload
	// rollouts are already in the counters: a status is observed after
	// every step, and each fact must count once per process.
	counted map[string]map[string]bool
}

// NewMetrics makes the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshroll_upgrade_phase",
			Help: "1 for the current phase of each MeshUpgrade, 0 for the others."}, []string{"upgrade", "phase"}),
		Workloads: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshroll_upgrade_workloads",
			Help: "Planned workloads of each MeshUpgrade by state (pending, succeeded, failed, rolled_back, skipped, total)."}, []string{"upgrade", "state"}),
		Proxies: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshroll_upgrade_proxies",
			Help: "Pods of each MeshUpgrade's workloads by the Istio revision their proxy runs (the revision mix)."}, []string{"upgrade", "revision"}),
		Gates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshroll_gate_evaluations_total",
			Help: "Gate evaluations by upgrade, gate and result (pass or fail)."}, []string{"upgrade", "gate", "result"}),
		Rollout: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshroll_workload_rollout_duration_seconds",
			Help: "How long one workload's rollout to its new revision took.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 12)}),
		Reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshroll_reconcile_duration_seconds",
			Help: "Duration of one MeshUpgrade reconcile (a step returns after the controller's slice, rollouts going on in its session).",
			// 5 ms to 10 min in steps of ×1.5: a reconcile lasts about the
			// slice (2 s), and doubling buckets could not tell 2.6 s from 5 s.
			Buckets: prometheus.ExponentialBucketsRange(0.005, 600, 30)}),
		counted: map[string]map[string]bool{},
	}
	for _, c := range []prometheus.Collector{m.Phase, m.Workloads, m.Proxies, m.Gates, m.Rollout, m.Reconcile} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe updates every series from one MeshUpgrade's recorded status.
func (m *Metrics) Observe(name, from, to string, st *v1alpha1.MeshUpgradeStatus) {
	if m == nil {
		return
	}
	for _, p := range phases {
		v := 0.0
		if st.Phase == p {
			v = 1
		}
		m.Phase.WithLabelValues(name, string(p)).Set(v)
	}
	c := v1alpha1.Tally(st.Workloads)
	if len(st.Workloads) == 0 {
		c = st.Counts // records not joined: the stored tally
	}
	for state, n := range map[string]int{"total": c.Total, "pending": c.Pending, "succeeded": c.Succeeded,
		"failed": c.Failed, "rolled_back": c.RolledBack, "skipped": c.Skipped} {
		m.Workloads.WithLabelValues(name, state).Set(float64(n))
	}
	// The mix is counted from the workloads' outcomes as the engine's
	// samples are (pods on from until a workload succeeded, on to after):
	// the last sample can lag the outcomes (an e2e run with leader kills
	// ended Succeeded, all 48 pods on the target, its last sample saying
	// 43), the outcomes cannot. Without joined records, the last sample is
	// all there is.
	mix := map[string]int{}
	if len(st.Workloads) > 0 {
		for _, w := range st.Workloads {
			rev := from
			if w.Outcome == v1alpha1.OutcomeSucceeded {
				rev = to
			}
			mix[rev] += max(w.Pods, 1)
		}
	} else if n := len(st.Samples); n > 0 {
		mix = st.Samples[n-1].Pods
	}
	// Every revision the run has seen, so the one it left drops to 0.
	for _, s := range st.Samples {
		for rev := range s.Pods {
			m.Proxies.WithLabelValues(name, rev).Set(float64(mix[rev]))
		}
	}
	for rev, n := range mix {
		m.Proxies.WithLabelValues(name, rev).Set(float64(n))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.counted[name]
	if seen == nil {
		seen = map[string]bool{}
		m.counted[name] = seen
	}
	for _, g := range st.Gates {
		key := "gate " + g.Name + " " + g.At.UTC().Format(time.RFC3339Nano)
		if seen[key] {
			continue
		}
		seen[key] = true
		result := "fail"
		if g.Passed {
			result = "pass"
		}
		m.Gates.WithLabelValues(name, g.Name, result).Inc()
	}
	for _, w := range st.Workloads {
		if w.Outcome != v1alpha1.OutcomeSucceeded || w.RolloutMillis <= 0 || seen[w.Ref()] {
			continue
		}
		seen[w.Ref()] = true
		m.Rollout.Observe(float64(w.RolloutMillis) / 1000)
	}
}

// Forget drops a deleted MeshUpgrade's series.
func (m *Metrics) Forget(name string) {
	if m == nil {
		return
	}
	for _, v := range []*prometheus.GaugeVec{m.Phase, m.Workloads, m.Proxies} {
		v.DeletePartialMatch(prometheus.Labels{"upgrade": name})
	}
	m.Gates.DeletePartialMatch(prometheus.Labels{"upgrade": name})
	m.mu.Lock()
	delete(m.counted, name)
	m.mu.Unlock()
}
