package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
)

// promGate is what a flag should turn into, compared without the query of
// presets (checked by substring).
type promGate struct {
	Name, Op, Threshold, OnNoData string
}

func TestBuildGates(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		probe string
		want  []promGate
		// wantQuery are substrings of each Prometheus gate's query, in order.
		wantQuery []string
		wantProbe *v1alpha1.ProbeGate
		wantErr   string
	}{
		{name: "nothing", want: nil},
		{
			name:      "preset with defaults",
			specs:     []string{"error-rate"},
			want:      []promGate{{"error-rate", "<", "0.01", gate.OnNoDataPass}},
			wantQuery: []string{"[1m]"},
		},
		{
			name:      "preset with threshold and window",
			specs:     []string{"error-rate:0.05:30s"},
			want:      []promGate{{"error-rate", "<", "0.05", gate.OnNoDataPass}},
			wantQuery: []string{"[30s]"},
		},
		{
			name:      "preset with a threshold only",
			specs:     []string{"push-time:2"},
			want:      []promGate{{"push-time", "<", "2", gate.OnNoDataPass}},
			wantQuery: []string{"pilot_proxy_convergence_time_bucket[1m]"},
		},
		{
			name:  "custom gate",
			specs: []string{"errors=sum(rate(app_errors_total[1m])) > 3"},
			want:  []promGate{{"errors", ">", "3", gate.OnNoDataPass}},
			// the query is exactly what came before the operator
			wantQuery: []string{"sum(rate(app_errors_total[1m]))"},
		},
		{
			name:      "custom gate whose query has = inside label matchers",
			specs:     []string{`5xx=sum(rate(istio_requests_total{response_code=~"5.."}[1m])) <= 0.5`},
			want:      []promGate{{"5xx", "<=", "0.5", gate.OnNoDataPass}},
			wantQuery: []string{`sum(rate(istio_requests_total{response_code=~"5.."}[1m]))`},
		},
		{
			name:      "custom gate with extra spaces",
			specs:     []string{"ready=  min(up{job=\"istiod\"})   ==   1  "},
			want:      []promGate{{"ready", "==", "1", gate.OnNoDataPass}},
			wantQuery: []string{`min(up{job="istiod"})`},
		},
		{
			name:  "presets, custom gates and the probe keep flag order, probe last",
			specs: []string{"cardinality", "errors=sum(x) != 0", "proxy-memory:1e9"},
			probe: "http://shop.example:8080/healthz",
			want: []promGate{
				{"cardinality", "<", "100000", gate.OnNoDataPass},
				{"errors", "!=", "0", gate.OnNoDataPass},
				{"proxy-memory", "<", "1e9", gate.OnNoDataPass},
			},
			wantQuery: []string{`istio_`, "sum(x)", "container_memory_working_set_bytes"},
			wantProbe: &v1alpha1.ProbeGate{URL: "http://shop.example:8080/healthz", QPS: 50,
				Duration: metav1.Duration{Duration: 3 * time.Second}, Connections: 4, MaxErrorPercent: "0"},
		},
		{
			name:      "probe only",
			probe:     "https://shop.example/",
			wantProbe: &v1alpha1.ProbeGate{URL: "https://shop.example/", QPS: 50, Duration: metav1.Duration{Duration: 3 * time.Second}, Connections: 4, MaxErrorPercent: "0"},
		},
		{name: "unknown preset", specs: []string{"latency"}, wantErr: `invalid --gate "latency": not a preset (cardinality, error-rate, proxy-memory, push-errors, push-time, xds-rejects)`},
		{name: "window is not a duration", specs: []string{"error-rate:0.05:soon"}, wantErr: `window "soon" is not a duration`},
		{name: "threshold is not a number", specs: []string{"error-rate:lots"}, wantErr: `invalid --gate "error-rate:lots"`},
		{name: "custom gate without spaces around the operator", specs: []string{"errors=sum(x)>3"}, wantErr: "with one of <= >= == != < > between spaces"},
		{name: "custom gate without an operator", specs: []string{"errors=sum(x)"}, wantErr: `invalid --gate "errors=sum(x)"`},
		{name: "custom gate without a threshold", specs: []string{"errors=sum(x) > "}, wantErr: `invalid --gate "errors"`},
		{name: "custom gate without a name", specs: []string{"=sum(x) > 1"}, wantErr: "name is empty"},
		{name: "probe that is not a URL", probe: "shop:80", wantErr: `invalid --gate "probe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gates, err := buildGates(tc.specs, tc.probe)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("buildGates() = %+v, %v; want an error containing %q", gates, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("buildGates() error = %v", err)
			}
			var gotProm []promGate
			var probe *v1alpha1.ProbeGate
			qi := 0
			for i, g := range gates {
				switch {
				case g.Prometheus != nil:
					if probe != nil {
						t.Errorf("gate %d (%s) comes after the probe", i, g.Name)
					}
					gotProm = append(gotProm, promGate{g.Name, g.Prometheus.Op, g.Prometheus.Threshold, g.Prometheus.OnNoData})
					if qi < len(tc.wantQuery) && !strings.Contains(g.Prometheus.Query, tc.wantQuery[qi]) {
						t.Errorf("gate %s query = %q, want it to contain %q", g.Name, g.Prometheus.Query, tc.wantQuery[qi])
					}
					qi++
				case g.Probe != nil:
					if g.Name != "probe" {
						t.Errorf("probe gate name = %q, want probe", g.Name)
					}
					probe = g.Probe
				default:
					t.Errorf("gate %d (%s) has neither prometheus nor probe", i, g.Name)
				}
			}
			if diff := cmp.Diff(tc.want, gotProm); diff != "" {
				t.Errorf("prometheus gates (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantProbe, probe); diff != "" {
				t.Errorf("probe gate (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCustomGateOperator checks which comparison splits a custom gate into
// query, operator and threshold: the last one surrounded by spaces, so
// comparisons inside the query stay in the query.
func TestCustomGateOperator(t *testing.T) {
	tests := []struct {
		expr                   string
		wantQuery, wantOp, thr string
	}{
		{expr: "sum(x) > 3", wantQuery: "sum(x)", wantOp: ">", thr: "3"},
		{expr: "sum(x) >= 3", wantQuery: "sum(x)", wantOp: ">=", thr: "3"},
		{expr: "sum(x) < 0.1", wantQuery: "sum(x)", wantOp: "<", thr: "0.1"},
		{expr: "sum(x) <= 0.1", wantQuery: "sum(x)", wantOp: "<=", thr: "0.1"},
		{expr: "sum(x) == 1", wantQuery: "sum(x)", wantOp: "==", thr: "1"},
		{expr: "sum(x) != 1", wantQuery: "sum(x)", wantOp: "!=", thr: "1"},
		{expr: "sum(a) / sum(b) > 0.99", wantQuery: "sum(a) / sum(b)", wantOp: ">", thr: "0.99"},
		{
			// A filter comparison inside the query, outer "<" checked before ">".
			expr:      `count(container_memory_working_set_bytes{container="istio-proxy"} > 268435456) < 1`,
			wantQuery: `count(container_memory_working_set_bytes{container="istio-proxy"} > 268435456)`, wantOp: "<", thr: "1",
		},
		{
			// "Is no istiod down": the inner == is listed before the outer <.
			expr:      `count(up{job="istiod"} == 0) < 1`,
			wantQuery: `count(up{job="istiod"} == 0)`, wantOp: "<", thr: "1",
		},
		{
			expr:      `count(rate(pilot_xds_push_errors[5m]) >= 1) > 0`,
			wantQuery: `count(rate(pilot_xds_push_errors[5m]) >= 1)`, wantOp: ">", thr: "0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			g, err := customGate("g", tc.expr)
			if err != nil {
				t.Fatalf("customGate(%q) error = %v", tc.expr, err)
			}
			got := *g.Prometheus
			want := v1alpha1.PrometheusGate{Query: tc.wantQuery, Op: tc.wantOp, Threshold: tc.thr, OnNoData: gate.OnNoDataPass}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("customGate(%q) (-want +got):\n%s", tc.expr, diff)
			}
			if err := gate.ValidateSpec(g); err != nil {
				t.Errorf("customGate(%q) built an invalid gate: %v", tc.expr, err)
			}
		})
	}
}
