package gatetest

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Exporter serves Istio-shaped metrics that a test drives, so gate queries
// written for a real mesh can be tested against a real Prometheus scrape
// without Envoy or istiod.
type Exporter struct {
	srv         *httptest.Server
	requests    *prometheus.CounterVec
	convergence prometheus.Histogram
}

// StartExporter serves /metrics on 127.0.0.1 from its own registry (so
// parallel tests never share counters) until the test ends.
func StartExporter(tb testing.TB) *Exporter {
	tb.Helper()
	reg := prometheus.NewRegistry()
	e := &Exporter{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests as reported by Istio sidecars (gatetest fake).",
			// The labels gates filter or group on: a subset of what Istio's
			// telemetry emits, with the same names.
		}, []string{
			"reporter", "source_workload", "destination_workload",
			"destination_workload_namespace", "response_code", "destination_canonical_revision",
		}),
		convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_proxy_convergence_time",
			Help: "Delays between config change and a proxy receiving all required configuration (gatetest fake).",
			// Istio's own buckets for this metric.
			Buckets: []float64{.1, .5, 1, 3, 5, 10, 20, 30},
		}),
	}
	reg.MustRegister(e.requests, e.convergence)
	e.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	tb.Cleanup(e.srv.Close)
	return e
}

// Address is host:port, as StartPrometheus wants its scrape targets.
func (e *Exporter) Address() string { return e.srv.Listener.Addr().String() }

// Revision is the destination_canonical_revision label Serve uses.
const Revision = "v1"

// Serve records n requests to workload in namespace ns answered with code,
// as both the client's and the server's sidecar report them (Istio counts a
// meshed request twice, once per reporter; gates must filter on reporter).
// n may be 0 to create the series ahead of time: rate() ignores the value a
// series first appears with, so a test that wants a spike counted creates
// the series before the spike.
func (e *Exporter) Serve(ns, workload string, code, n int) {
	for _, reporter := range []string{"source", "destination"} {
		e.requests.WithLabelValues(reporter, "gatetest-client", workload, ns, strconv.Itoa(code), Revision).Add(float64(n))
	}
}

// ObservePush records one config push that took d to converge.
func (e *Exporter) ObservePush(d time.Duration) {
	e.convergence.Observe(d.Seconds())
}
