package gate_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
)

// shortWindow suits 1s scrapes: five samples per rate, short enough that a
// planted spike shows within seconds.
const shortWindow = 5 * time.Second

// traffic adds 20 good requests (and bad5xx 503s) to shop/cart every 100ms
// until the test ends, like a steady client would.
func traffic(t *testing.T, exp *gatetest.Exporter, bad5xx *atomic.Int64) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				exp.Serve("shop", "cart", 200, 20)
				exp.Serve("shop", "cart", 503, int(bad5xx.Load()))
			}
		}
	}()
}

// TestPrometheusGateRealServer runs the error-rate preset against the real
// Prometheus binary scraping an exporter: healthy traffic passes, a planted
// 5xx spike fails with the measured ratio in the evidence.
func TestPrometheusGateRealServer(t *testing.T) {
	t.Parallel()
	exp := gatetest.StartExporter(t)
	// Create the 503 series at 0 so the spike is an increase rate() counts.
	exp.Serve("shop", "cart", 503, 0)
	var bad5xx atomic.Int64
	traffic(t, exp, &bad5xx)
	exp.ObservePush(200 * time.Millisecond)
	prom := gatetest.StartPrometheus(t, exp.Address())

	p, err := gate.NewPrometheus(prom.URL(), gate.WithQueryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	errorRate, err := gate.Preset(gate.PresetErrorRate, gate.PresetParams{Window: shortWindow})
	if err != nil {
		t.Fatal(err)
	}
	prom.WaitForSeries(t, errorRate.Prometheus.Query)
	ctx := t.Context()

	t.Run("healthy traffic passes", func(t *testing.T) {
		v, err := p.Evaluate(ctx, errorRate.Name, *errorRate.Prometheus, time.Now())
		if err != nil {
			t.Fatalf("Evaluate() error = %v", err)
		}
		if !v.Passed || !strings.HasSuffix(v.Evidence, "= 0 (want < 0.01) → pass") {
			t.Fatalf("Evaluate() = %+v; want a pass measuring 0", v)
		}
	})

	t.Run("cardinality counts the Istio series", func(t *testing.T) {
		// 2 reporters × 2 codes = 4 istio_requests_total series.
		g, err := gate.Preset(gate.PresetCardinality, gate.PresetParams{Threshold: "4"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Evaluate(ctx, g.Name, *g.Prometheus, time.Now())
		if err != nil {
			t.Fatalf("Evaluate() error = %v", err)
		}
		if v.Passed || !strings.Contains(v.Evidence, "= 4 (want < 4) → fail") {
			t.Errorf("Evaluate() = %+v; want a fail measuring 4", v)
		}
	})

	t.Run("no data follows onNoData", func(t *testing.T) {
		for _, onNoData := range []string{"Pass", "Fail"} {
			g := v1alpha1.PrometheusGate{Query: `istio_requests_total{response_code="999"}`, Op: "<", Threshold: "1", OnNoData: onNoData}
			v, err := p.Evaluate(ctx, "none", g, time.Now())
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			if v.Passed != (onNoData == "Pass") || !strings.Contains(v.Evidence, "no series; onNoData="+onNoData) {
				t.Errorf("Evaluate(onNoData=%s) = %+v", onNoData, v)
			}
		}
	})

	t.Run("NaN alone is no data", func(t *testing.T) {
		// push-time over a window without pushes is 0/0 inside
		// histogram_quantile: NaN, decided like no data.
		g, err := gate.Preset(gate.PresetPushTime, gate.PresetParams{Window: shortWindow})
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Evaluate(ctx, g.Name, *g.Prometheus, time.Now())
		if err != nil {
			t.Fatalf("Evaluate() error = %v", err)
		}
		if !v.Passed || !strings.Contains(v.Evidence, "only NaN") {
			t.Errorf("Evaluate() = %+v; want a pass on NaN-only data", v)
		}
	})

	t.Run("query that does not parse", func(t *testing.T) {
		g := v1alpha1.Gate{Name: "5xx", Prometheus: &v1alpha1.PrometheusGate{
			Query: "sum(rate(istio_requests_total[1m])", Op: "<", Threshold: "0.01",
		}}
		err := p.Validate(ctx, g)
		var invalid *gate.InvalidError
		if !errors.As(err, &invalid) {
			t.Fatalf("Validate() = %v; want an *InvalidError", err)
		}
		want := `gate "5xx": query "sum(rate(istio_requests_total[1m])" does not parse: `
		if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; fix the PromQL") {
			t.Errorf("Validate() = %q; want %q…; fix the PromQL", err, want)
		}
		t.Logf("parse error as reported: %v", err)
	})

	t.Run("valid gate validates", func(t *testing.T) {
		if err := p.Validate(ctx, errorRate); err != nil {
			t.Errorf("Validate() = %v", err)
		}
	})

	t.Run("5xx spike fails", func(t *testing.T) {
		bad5xx.Store(10) // 10 of 30 answers per tick: a third
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, err := p.Evaluate(ctx, errorRate.Name, *errorRate.Prometheus, time.Now())
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			if !v.Passed {
				ratio := v.Values["{}"]
				if ratio <= 0.01 || !strings.Contains(v.Evidence, "(want < 0.01) → fail") {
					t.Fatalf("Evaluate() = %+v; want the measured ratio above 0.01 in the evidence", v)
				}
				t.Logf("evidence: %s", v.Evidence)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("gate still passes 20s after the spike: %s", v.Evidence)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}
