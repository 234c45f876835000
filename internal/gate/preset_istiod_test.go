package gate

import (
	"strings"
	"testing"
	"time"
)

func TestIstiodPresets(t *testing.T) {
	for name, metric := range map[string]string{PresetXDSRejects: "pilot_total_xds_rejects[30s]", PresetPushErrors: "pilot_xds_push_context_errors[30s]"} {
		g, err := Preset(name, PresetParams{Window: 30 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(g.Prometheus.Query, metric) || g.Prometheus.Op != "<" || g.Prometheus.Threshold != "1" {
			t.Errorf("%s = %+v, want a query on %s below 1", name, g.Prometheus, metric)
		}
	}
	if _, ok := istiodPreset("error-rate", "1m"); ok {
		t.Error("istiodPreset claims a preset that is not istiod's")
	}
}
