package gate_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/gate/gatetest"
)

func TestJudgeProbe(t *testing.T) {
	r := func(codes map[int]int64) gate.ProbeResult {
		res := gate.ProbeResult{URL: "http://a/", Codes: codes, P50: time.Millisecond, P99: 3 * time.Millisecond}
		var bad int64
		for c, n := range codes {
			res.Requests += n
			if c < 200 || c > 299 {
				bad += n
			}
		}
		if res.Requests > 0 {
			res.ErrorPercent = 100 * float64(bad) / float64(res.Requests)
		}
		return res
	}
	tests := []struct {
		name     string
		result   gate.ProbeResult
		max      string
		passed   bool
		evidence string
		wantErr  string
	}{
		{"all 2xx", r(map[int]int64{200: 98, 204: 2}), "", true,
			"GET http://a/: 100 requests, codes 200:98 204:2, 0% non-2xx (want <= 0%), p50 1ms p99 3ms → pass", ""},
		{"one 503 fails by default", r(map[int]int64{200: 99, 503: 1}), "0", false,
			"GET http://a/: 100 requests, codes 200:99 503:1, 1% non-2xx (want <= 0%), p50 1ms p99 3ms → fail", ""},
		{"within budget", r(map[int]int64{200: 99, 503: 1}), "1", true, "1% non-2xx (want <= 1%)", ""},
		{"socket errors count", r(map[int]int64{-1: 4, 200: 96}), "2.5", false, "codes conn-error:4 200:96, 4% non-2xx", ""},
		{"3xx counts as error", r(map[int]int64{301: 1}), "", false, "codes 301:1, 100% non-2xx", ""},
		{"nothing measured fails", r(nil), "100", false, "GET http://a/: no request completed → fail", ""},
		{"bad budget", r(nil), "lots", false, "", `maxErrorPercent "lots" is not a decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.result.Judge("probe", tt.max)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Judge() error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Judge() error = %v", err)
			}
			if v.Passed != tt.passed || !strings.Contains(v.Evidence, tt.evidence) {
				t.Errorf("Judge() = %v %q; want %v containing %q", v.Passed, v.Evidence, tt.passed, tt.evidence)
			}
			if v.Values["requests"] != float64(tt.result.Requests) {
				t.Errorf("Values[requests] = %v; want %d", v.Values["requests"], tt.result.Requests)
			}
		})
	}
}

func probeGate(url string, d time.Duration) v1alpha1.ProbeGate {
	return v1alpha1.ProbeGate{URL: url, QPS: 100, Duration: metav1.Duration{Duration: d}, Connections: 2}
}

func TestProbeAllOK(t *testing.T) {
	t.Parallel()
	b := gatetest.StartBackend(t)
	res, err := gate.Probe(t.Context(), probeGate(b.URL()+"/healthz", 500*time.Millisecond))
	if err != nil {
		t.Fatalf("Probe() error = %v", err)
	}
	if res.Requests < 10 || len(res.Codes) != 1 || res.Codes[200] != res.Requests {
		t.Fatalf("Probe() = %+v; want only 200s", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("Probe() latencies p50 %s p99 %s; want 0 < p50 <= p99", res.P50, res.P99)
	}
	v, err := res.Judge("smoke", "")
	if err != nil || !v.Passed {
		t.Errorf("Judge() = %+v, %v; want a pass", v, err)
	}
}

func TestProbeCounts503(t *testing.T) {
	t.Parallel()
	b := gatetest.StartBackend(t)
	b.SetFailFraction(0.2)
	res, err := gate.Probe(t.Context(), probeGate(b.URL(), 500*time.Millisecond))
	if err != nil {
		t.Fatalf("Probe() error = %v", err)
	}
	served, failed := b.Counts()
	// Fortio's warm-up requests reach the backend but are not in the
	// result, so compare shares, not counts.
	if res.Codes[503] == 0 || res.Codes[200] == 0 || served < res.Requests || failed < res.Codes[503] {
		t.Fatalf("Probe() = %+v (backend served %d, failed %d); want both 200s and 503s", res, served, failed)
	}
	if res.ErrorPercent < 10 || res.ErrorPercent > 30 {
		t.Errorf("ErrorPercent = %v; want about 20", res.ErrorPercent)
	}
	v, err := res.Judge("smoke", "5")
	if err != nil || v.Passed || !strings.Contains(v.Evidence, "503:") {
		t.Errorf("Judge() = %+v, %v; want a fail naming 503", v, err)
	}
}

func TestProbeUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/"
	_ = l.Close()
	res, err := gate.Probe(t.Context(), probeGate(url, 300*time.Millisecond))
	if err != nil {
		t.Fatalf("Probe() error = %v", err)
	}
	v, err := res.Judge("smoke", "50")
	if err != nil || v.Passed || res.Codes[gate.SocketErrorCode] == 0 {
		t.Errorf("Probe() = %+v, verdict %+v, %v; want socket errors and a fail", res, v, err)
	}
}

func TestStartProbeStop(t *testing.T) {
	t.Parallel()
	b := gatetest.StartBackend(t)
	// Duration is ignored by a background probe: it runs until Stop.
	rp := gate.StartProbe(t.Context(), probeGate(b.URL(), time.Millisecond))
	time.Sleep(400 * time.Millisecond)
	b.SetFailFraction(1)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	res, err := rp.Stop()
	if err != nil {
		t.Fatalf("Stop() error = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Stop() took %s; want it prompt", took)
	}
	if res.Codes[200] == 0 || res.Codes[503] == 0 {
		t.Fatalf("Stop() = %+v; want the 200s before and the 503s during the outage", res)
	}
	if res.Elapsed < 500*time.Millisecond {
		t.Errorf("Elapsed = %s; want the whole operation", res.Elapsed)
	}
	again, err := rp.Stop()
	if err != nil || again.Requests != res.Requests {
		t.Errorf("second Stop() = %+v, %v; want the same result", again, err)
	}
}

func TestStartProbeContextCancel(t *testing.T) {
	t.Parallel()
	b := gatetest.StartBackend(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	rp := gate.StartProbe(ctx, probeGate(b.URL(), 0))
	<-ctx.Done()
	res, err := rp.Stop()
	if err != nil || res.Requests == 0 {
		t.Errorf("Stop() after cancel = %+v, %v; want what was measured", res, err)
	}
}

func TestProbeContextCancelReturnsPartialResult(t *testing.T) {
	t.Parallel()
	b := gatetest.StartBackend(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := gate.Probe(ctx, probeGate(b.URL(), time.Minute))
	if err == nil || time.Since(start) > 5*time.Second || res.Requests == 0 {
		t.Errorf("Probe() = %+v, %v after %s; want a prompt partial result and the context error", res, err, time.Since(start))
	}
}
