package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gate"
)

// gateOps are the comparison operators of a "name=<promql> <op> <threshold>"
// gate flag; the one written last (surrounded by spaces) separates the
// threshold, since PromQL itself may compare inside the query.
var gateOps = []string{"<=", ">=", "==", "!=", "<", ">"}

// buildGates turns --gate and --probe flags into gates. A preset may carry
// a threshold and window: error-rate:0.05:30s.
func buildGates(specs []string, probe string) ([]v1alpha1.Gate, error) {
	var out []v1alpha1.Gate
	for _, s := range specs {
		name, expr, custom := strings.Cut(s, "=")
		if !custom {
			g, err := presetGate(s)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
			continue
		}
		g, err := customGate(name, expr)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	if probe != "" {
		out = append(out, v1alpha1.Gate{Name: "probe", Probe: &v1alpha1.ProbeGate{URL: probe, QPS: 50, Duration: metav1.Duration{Duration: 3 * time.Second}, Connections: 4, MaxErrorPercent: "0"}})
	}
	for _, g := range out {
		if err := gate.ValidateSpec(g); err != nil {
			return nil, fmt.Errorf("invalid --gate %q: %w", g.Name, err)
		}
	}
	return out, nil
}

func presetGate(s string) (v1alpha1.Gate, error) {
	parts := strings.Split(s, ":")
	p := gate.PresetParams{}
	if len(parts) > 1 {
		p.Threshold = parts[1]
	}
	if len(parts) > 2 {
		d, err := time.ParseDuration(parts[2])
		if err != nil {
			return v1alpha1.Gate{}, fmt.Errorf("invalid --gate %q: window %q is not a duration", s, parts[2])
		}
		p.Window = d
	}
	if !slices.Contains(gate.PresetNames(), parts[0]) {
		return v1alpha1.Gate{}, fmt.Errorf("invalid --gate %q: not a preset (%s) nor name=<promql> <op> <threshold>", s, strings.Join(gate.PresetNames(), ", "))
	}
	g, err := gate.Preset(parts[0], p)
	if err != nil {
		return v1alpha1.Gate{}, fmt.Errorf("invalid --gate %q: %w", s, err)
	}
	return g, nil
}

// customGate reads "<promql> <op> <threshold>": the operator is the last
// comparison operator surrounded by spaces.
func customGate(name, expr string) (v1alpha1.Gate, error) {
	best, bestOp := -1, ""
	for _, op := range gateOps {
		if i := strings.LastIndex(expr, " "+op+" "); i > best {
			best, bestOp = i, op
		}
	}
	if best >= 0 {
		q, th := strings.TrimSpace(expr[:best]), strings.TrimSpace(expr[best+len(bestOp)+2:])
		return v1alpha1.Gate{Name: name, Prometheus: &v1alpha1.PrometheusGate{Query: q, Op: bestOp, Threshold: th, OnNoData: "Pass"}}, nil
	}
	return v1alpha1.Gate{}, fmt.Errorf(`invalid --gate %q: write "name=<promql> <op> <threshold>" with one of %s between spaces`, name+"="+expr, strings.Join(gateOps, " "))
}
