package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
)

// TestPrometheusGatesHoldThroughSoak evaluates a member MeshUpgrade's own
// Prometheus gates against a real Prometheus: a 5xx rate that appears after
// the member succeeded fails the soak; a Prometheus that does not answer is
// not a failed check.
func TestPrometheusGatesHoldThroughSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	exp := gatetest.StartExporter(t)
	prom := gatetest.StartPrometheus(t, exp.Address())
	exp.Serve("shop", "cart", 200, 100)
	prom.WaitForSeries(t, `istio_requests_total`)
	query := `sum(istio_requests_total{response_code=~"5.."}) or vector(0)`
	mu := &v1alpha1.MeshUpgrade{Spec: v1alpha1.MeshUpgradeSpec{PrometheusURL: prom.URL(), Gates: []v1alpha1.Gate{
		{Name: "no-5xx", Prometheus: &v1alpha1.PrometheusGate{Query: query, Op: "<", Threshold: "1", OnNoData: "Pass"}},
		{Name: "probe", Probe: &v1alpha1.ProbeGate{URL: "http://127.0.0.1:1"}}, // only Prometheus gates are re-run
	}}}
	gates := PrometheusGates(t.Context(), mu, time.Now())
	if len(gates) != 1 || !gates[0].Passed {
		t.Fatalf("before any 5xx: %+v", gates)
	}
	exp.Serve("shop", "cart", 503, 5)
	prom.WaitForSeries(t, `istio_requests_total{response_code="503"}`)
	gates = PrometheusGates(t.Context(), mu, time.Now())
	if len(gates) != 1 || gates[0].Passed {
		t.Fatalf("after 5xx: %+v", gates)
	}
	o := Observation{Phase: v1alpha1.PhaseSucceeded, Gates: gates}
	if ok, why := o.holds(); ok || !strings.Contains(why, "gate no-5xx failed") {
		t.Errorf("holds() = %t, %q", ok, why)
	}
	mu.Spec.PrometheusURL = "http://127.0.0.1:1"
	gates = PrometheusGates(t.Context(), mu, time.Now())
	if len(gates) != 1 || !gates[0].Passed || !strings.Contains(gates[0].Evidence, "not measured") {
		t.Errorf("unreachable Prometheus: %+v", gates)
	}
}
