package gatetest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/gate/gatetest"
)

func TestBackendFailFraction(t *testing.T) {
	tests := []struct {
		fraction   float64
		requests   int
		wantFailed int64
	}{
		{0, 10, 0},
		{0.1, 100, 10},
		{0.25, 8, 2},
		{1, 5, 5},
		{2, 3, 3}, // clamped to 1
	}
	b := gatetest.StartBackend(t)
	for _, tt := range tests {
		b.SetFailFraction(tt.fraction)
		var got503 int64
		for range tt.requests {
			resp, err := http.Get(b.URL())
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				got503++
			}
		}
		served, failed := b.Counts()
		if served != int64(tt.requests) || failed != tt.wantFailed || got503 != tt.wantFailed {
			t.Errorf("fraction %v: served %d failed %d (saw %d 503s); want %d and %d",
				tt.fraction, served, failed, got503, tt.requests, tt.wantFailed)
		}
	}
}

func TestExporterServesIstioMetrics(t *testing.T) {
	e := gatetest.StartExporter(t)
	e.Serve("shop", "cart", 503, 3)
	resp, err := http.Get("http://" + e.Address() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`istio_requests_total{destination_canonical_revision="v1",destination_workload="cart",destination_workload_namespace="shop",reporter="destination",response_code="503",source_workload="gatetest-client"} 3`,
		`reporter="source"`,
		`pilot_proxy_convergence_time_bucket{le="1"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
