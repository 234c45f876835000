package gate

import (
	"fmt"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Presets on istiod's own metrics (its monitoring port, 15014), which tell
// whether configuration reaches the proxies: the first of seed 001's two
// failure modes (config propagation), visible before any request fails.
const (
	// PresetXDSRejects fails when any proxy rejected (NACKed) configuration
	// istiod pushed within the window: a new control plane generating
	// config its proxies cannot use.
	PresetXDSRejects = "xds-rejects"
	// PresetPushErrors fails when istiod failed to build or send any push
	// within the window (pilot_xds_pushes of the *_senderr and *_builderr
	// types, and push-context errors).
	PresetPushErrors = "push-errors"
)

// istiodPresets are the names istiodPreset knows, for PresetNames.
var istiodPresets = []string{PresetXDSRejects, PresetPushErrors}

// istiodPreset builds the Prometheus gate of an istiod preset over window w
// (a PromQL duration); ok is false for another name. "or vector(0)" makes
// a window without any reject or error read 0 instead of no data.
func istiodPreset(name, w string) (pg v1alpha1.PrometheusGate, ok bool) {
	switch name {
	case PresetXDSRejects:
		return v1alpha1.PrometheusGate{
			Query: fmt.Sprintf(`sum(increase(pilot_total_xds_rejects[%s])) or vector(0)`, w),
			Op:    "<", Threshold: "1",
		}, true
	case PresetPushErrors:
		return v1alpha1.PrometheusGate{
			Query: fmt.Sprintf(`(sum(increase(pilot_xds_pushes{type=~".*_(senderr|builderr)"}[%s])) or vector(0))`+
				` + (sum(increase(pilot_xds_push_context_errors[%s])) or vector(0))`, w, w),
			Op: "<", Threshold: "1",
		}, true
	}
	return v1alpha1.PrometheusGate{}, false
}
