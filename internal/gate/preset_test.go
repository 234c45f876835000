package gate

import (
	"strings"
	"testing"
	"time"
)

func TestPreset(t *testing.T) {
	tests := []struct {
		name      string
		params    PresetParams
		query     []string // substrings of the query
		threshold string
		wantErr   string
	}{
		{name: PresetErrorRate, query: []string{`reporter="destination"`, `response_code=~"5.."`, "[1m]", "or vector(0)"}, threshold: "0.01"},
		{name: PresetErrorRate, params: PresetParams{Window: 5 * time.Second, Threshold: "0.05"}, query: []string{"[5s]"}, threshold: "0.05"},
		{name: PresetPushTime, query: []string{"histogram_quantile(0.99", "pilot_proxy_convergence_time_bucket[1m]"}, threshold: "1"},
		{name: PresetPushTime, params: PresetParams{Window: 1500 * time.Millisecond}, query: []string{"[1s500ms]"}, threshold: "1"},
		{name: PresetProxyMemory, query: []string{`container="istio-proxy"`}, threshold: "268435456"},
		{name: PresetCardinality, query: []string{`istio_.*`}, threshold: "100000"},
		{name: "latency", wantErr: "unknown preset; known presets are cardinality, error-rate, proxy-memory, push-errors, push-time, xds-rejects"},
		{name: PresetErrorRate, params: PresetParams{Threshold: "1%"}, wantErr: `threshold "1%" is not a decimal number`},
		{name: PresetErrorRate, params: PresetParams{Window: time.Microsecond}, wantErr: "whole number of milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Preset(tt.name, tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Preset() error = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Preset() error = %v", err)
			}
			if g.Name != tt.name || g.Prometheus == nil || g.Probe != nil {
				t.Fatalf("Preset() = %+v; want a Prometheus gate named %q", g, tt.name)
			}
			for _, q := range tt.query {
				if !strings.Contains(g.Prometheus.Query, q) {
					t.Errorf("query %q; want it to contain %q", g.Prometheus.Query, q)
				}
			}
			if g.Prometheus.Threshold != tt.threshold || g.Prometheus.OnNoData != OnNoDataPass {
				t.Errorf("threshold %q onNoData %q; want %q Pass", g.Prometheus.Threshold, g.Prometheus.OnNoData, tt.threshold)
			}
		})
	}
}

func TestPresetNamesAllBuild(t *testing.T) {
	for _, name := range PresetNames() {
		if _, err := Preset(name, PresetParams{}); err != nil {
			t.Errorf("Preset(%q) error = %v", name, err)
		}
	}
}
