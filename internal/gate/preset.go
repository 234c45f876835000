package gate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Preset names, as typed after `meshroll upgrade --gate`.
const (
	// PresetErrorRate fails when the share of 5xx answers, as reported by the
	// receiving sidecars, exceeds 1% over the window: the first symptom of a
	// proxy that cannot talk to its peers after a migration.
	PresetErrorRate = "error-rate"
	// PresetPushTime fails when istiod's p99 config push convergence exceeds
	// one second over the window: a new control plane that cannot keep up.
	PresetPushTime = "push-time"
	// PresetProxyMemory fails when any istio-proxy container uses more than
	// 256 MiB: new proxy versions sometimes grow memory with the same config.
	PresetProxyMemory = "proxy-memory"
	// PresetCardinality fails when Istio metrics exceed 100000 series: a
	// telemetry change in a new version can multiply labels and overload
	// Prometheus, which then blinds every other gate.
	PresetCardinality = "cardinality"
)

// DefaultPresetWindow is the rate window of presets that use one; one minute
// smooths single slow requests yet reacts within a wave.
const DefaultPresetWindow = time.Minute

// PresetParams tunes a preset. Zero values take the preset's defaults.
type PresetParams struct {
	// Window is the rate window of error-rate and push-time (default
	// DefaultPresetWindow). Tests with 1s scrapes use a few seconds. It must
	// be a whole number of milliseconds.
	Window time.Duration
	// Threshold replaces the preset's threshold; it is a decimal number.
	Threshold string
}

// PresetNames lists the presets in a stable order, for help text and shell
// completion.
func PresetNames() []string {
	names := append([]string{PresetErrorRate, PresetPushTime, PresetProxyMemory, PresetCardinality}, istiodPresets...)
	sort.Strings(names)
	return names
}

// Preset builds the named gate. The returned gate is named after the preset
// and validated by ValidateSpec, so a caller can use it directly.
func Preset(name string, p PresetParams) (v1alpha1.Gate, error) {
	window := p.Window
	if window == 0 {
		window = DefaultPresetWindow
	}
	if window < time.Millisecond || window%time.Millisecond != 0 {
		return v1alpha1.Gate{}, fmt.Errorf("failed to build preset %q: window %s is not a positive whole number of milliseconds", name, window)
	}
	w := model.Duration(window).String()
	var pg v1alpha1.PrometheusGate
	switch name {
	case PresetErrorRate:
		// "or vector(0)" makes a window without any 5xx read 0 instead of no
		// data; a window without any traffic still reads no data (0/nothing).
		pg = v1alpha1.PrometheusGate{
			Query: fmt.Sprintf(`(sum(rate(istio_requests_total{reporter="destination",response_code=~"5.."}[%s])) or vector(0))`+
				` / sum(rate(istio_requests_total{reporter="destination"}[%s]))`, w, w),
			Op: "<", Threshold: "0.01",
		}
	case PresetPushTime:
		pg = v1alpha1.PrometheusGate{
			Query: fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(pilot_proxy_convergence_time_bucket[%s])))`, w),
			Op:    "<", Threshold: "1",
		}
	case PresetProxyMemory:
		pg = v1alpha1.PrometheusGate{
			Query: `max(container_memory_working_set_bytes{container="istio-proxy"})`,
			Op:    "<", Threshold: "268435456",
		}
	case PresetCardinality:
		pg = v1alpha1.PrometheusGate{
			Query: `count({__name__=~"istio_.*"})`,
			Op:    "<", Threshold: "100000",
		}
	default:
		var ok bool
		if pg, ok = istiodPreset(name, w); ok {
			break
		}
		return v1alpha1.Gate{}, fmt.Errorf("failed to build preset %q: unknown preset; known presets are %s", name, strings.Join(PresetNames(), ", "))
	}
	if p.Threshold != "" {
		pg.Threshold = p.Threshold
	}
	pg.OnNoData = OnNoDataPass
	g := v1alpha1.Gate{Name: name, Prometheus: &pg}
	if err := ValidateSpec(g); err != nil {
		return v1alpha1.Gate{}, fmt.Errorf("failed to build preset %q: %w", name, err)
	}
	return g, nil
}
