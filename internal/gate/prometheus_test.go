package gate_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
)

func TestNewPrometheusRejectsBadURL(t *testing.T) {
	for _, url := range []string{"", "prometheus:9090", "/api", "ftp://a"} {
		if _, err := gate.NewPrometheus(url); err == nil {
			t.Errorf("NewPrometheus(%q) error = nil; want an error", url)
		}
	}
}

// TestEvaluateUnreachable checks that a Prometheus that cannot be reached
// yields an error, never a failing verdict: the engine must not roll back
// because its monitoring is down.
func TestEvaluateUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p, err := gate.NewPrometheus("http://"+addr, gate.WithQueryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Evaluate(t.Context(), "5xx", v1alpha1.PrometheusGate{Query: "up", Op: "<", Threshold: "1"}, time.Now())
	if err == nil {
		t.Fatalf("Evaluate() = %+v, nil; want an error", v)
	}
	var invalid *gate.InvalidError
	if errors.As(err, &invalid) {
		t.Errorf("Evaluate() error is an *InvalidError (%v); want a transient error", err)
	}
	if !strings.Contains(err.Error(), "failed to query Prometheus") || !strings.Contains(err.Error(), addr) {
		t.Errorf("Evaluate() error = %q; want it to name the server", err)
	}
}

// fakePrometheus answers every query with body and status, for the error
// shapes the real server is hard to provoke into.
func fakePrometheus(t *testing.T, status int, body string) *gate.Prometheus {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	p, err := gate.NewPrometheus(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluateResultShapes(t *testing.T) {
	lt := v1alpha1.PrometheusGate{Query: "q", Op: "<", Threshold: "1"}
	tests := []struct {
		name     string
		status   int
		body     string
		gate     v1alpha1.PrometheusGate
		passed   bool
		evidence string
		wantErr  string
		invalid  bool
	}{
		{
			name:     "scalar",
			status:   200,
			body:     `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.5"]}}`,
			gate:     lt,
			passed:   true,
			evidence: "q = 0.5 (want < 1) → pass",
		},
		{
			name:   "vector of two",
			status: 200,
			body: `{"status":"success","data":{"resultType":"vector","result":[` +
				`{"metric":{"pod":"a"},"value":[1700000000,"0.5"]},{"metric":{"pod":"b"},"value":[1700000000,"3"]}]}}`,
			gate:     lt,
			passed:   false,
			evidence: `q: 1 of 2 series fail (want < 1): {pod="b"} = 3 → fail`,
		},
		{
			name:     "empty vector with onNoData Fail",
			status:   200,
			body:     `{"status":"success","data":{"resultType":"vector","result":[]}}`,
			gate:     v1alpha1.PrometheusGate{Query: "q", Op: "<", Threshold: "1", OnNoData: "Fail"},
			passed:   false,
			evidence: "q: no series; onNoData=Fail → fail",
		},
		{
			name:    "range vector is a spec mistake",
			status:  200,
			body:    `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
			gate:    lt,
			wantErr: `query "q" returns a range vector`,
			invalid: true,
		},
		{
			name:    "parse error",
			status:  400,
			body:    `{"status":"error","errorType":"bad_data","error":"1:4: parse error: unclosed left parenthesis"}`,
			gate:    lt,
			wantErr: `gate "g": query "q" does not parse: 1:4: parse error: unclosed left parenthesis; fix the PromQL`,
			invalid: true,
		},
		{
			name:    "server error is transient",
			status:  503,
			body:    `{"status":"error","errorType":"unavailable","error":"starting"}`,
			gate:    lt,
			wantErr: "failed to query Prometheus",
		},
		{
			name:    "bad op never reaches the server",
			status:  500,
			gate:    v1alpha1.PrometheusGate{Query: "q", Op: "~", Threshold: "1"},
			wantErr: `op "~" is not one of`,
			invalid: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakePrometheus(t, tt.status, tt.body)
			v, err := p.Evaluate(t.Context(), "g", tt.gate, time.Unix(1700000000, 0))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Evaluate() error = %v; want it to contain %q", err, tt.wantErr)
				}
				var invalid *gate.InvalidError
				if errors.As(err, &invalid) != tt.invalid {
					t.Errorf("Evaluate() error %T; want *InvalidError=%v", err, tt.invalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			if v.Passed != tt.passed || v.Evidence != tt.evidence {
				t.Errorf("Evaluate() = %v %q; want %v %q", v.Passed, v.Evidence, tt.passed, tt.evidence)
			}
		})
	}
}

func TestValidateProbeGateNeedsNoServer(t *testing.T) {
	p := fakePrometheus(t, 500, "")
	g := v1alpha1.Gate{Name: "smoke", Probe: &v1alpha1.ProbeGate{URL: "http://127.0.0.1:1/"}}
	if err := p.Validate(context.Background(), g); err != nil {
		t.Errorf("Validate() = %v; want nil", err)
	}
}
