package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Runner evaluates any configured gate: Prometheus gates against one server,
// probe gates with a Fortio load probe. The upgrade engine calls it after
// every wave.
type Runner struct {
	// Prometheus is nil when no server was given; Prometheus gates then fail
	// validation instead of the run.
	Prometheus *Prometheus
}

// NewRunner builds a Runner; promURL may be empty.
func NewRunner(promURL string) (*Runner, error) {
	r := &Runner{}
	if promURL != "" {
		p, err := NewPrometheus(promURL)
		if err != nil {
			return nil, err
		}
		r.Prometheus = p
	}
	return r, nil
}

// Evaluate returns the gate's verdict as passed + evidence; an error means
// nothing could be measured.
func (r *Runner) Evaluate(ctx context.Context, g v1alpha1.Gate, _ int) (bool, string, error) {
	switch {
	case g.Prometheus != nil:
		if r.Prometheus == nil {
			return false, "", fmt.Errorf("gate %q needs a Prometheus server (--prometheus)", g.Name)
		}
		v, err := r.Prometheus.Evaluate(ctx, g.Name, *g.Prometheus, time.Now())
		if err != nil {
			return false, "", err
		}
		return v.Passed, v.Evidence, nil
	case g.Probe != nil:
		res, err := Probe(ctx, *g.Probe)
		if err != nil {
			return false, "", err
		}
		v, err := res.Judge(g.Name, g.Probe.MaxErrorPercent)
		if err != nil {
			return false, "", err
		}
		return v.Passed, v.Evidence, nil
	}
	return false, "", fmt.Errorf("gate %q has neither prometheus nor probe", g.Name)
}

// Validate checks a gate against its backend before anything changes: a
// PromQL query that does not parse is refused up front.
func (r *Runner) Validate(ctx context.Context, g v1alpha1.Gate) error {
	if err := ValidateSpec(g); err != nil {
		return err
	}
	if g.Prometheus == nil {
		return nil
	}
	if r.Prometheus == nil {
		return fmt.Errorf("gate %q queries Prometheus: pass --prometheus URL", g.Name)
	}
	return r.Prometheus.Validate(ctx, g)
}
