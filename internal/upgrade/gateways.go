package upgrade

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/gateway"
)

// This file is the gateways step: before the first wave, every meshroll
// blue/green gateway whose Service selects From is flipped to a ready colour
// of To. Which gateways flip (with the colour each selected before: the
// previous selector) is recorded before the first Service is written, so a
// resumed run finishes exactly those and a rollback or a halt flips exactly
// those back, however a kill fell.

// GatewaySwitcher moves meshroll's blue/green gateways between colours;
// *gateway.Switcher is the cluster's.
type GatewaySwitcher interface {
	// List returns every meshroll gateway with the colour its Service selects.
	List(ctx context.Context) ([]gateway.Live, error)
	// Switch points a gateway's Service at colour to once it is ready
	// (installing the colour when missing); no write when it already does.
	Switch(ctx context.Context, namespace, name, to string) error
	// RemoveColour deletes a colour its Service no longer selects (the
	// prune step: the old colour's pods keep the old revision in use).
	RemoveColour(ctx context.Context, namespace, name, rev string) error
}

// GatewayFlips decides which gateways the step flips: those whose Service
// selects from, each to colour to. It is pure so the decision is the same
// whoever runs the step.
func GatewayFlips(live []gateway.Live, from, to string) []v1alpha1.GatewayFlip {
	var out []v1alpha1.GatewayFlip
	for _, g := range live {
		if g.Revision == from && from != to {
			out = append(out, v1alpha1.GatewayFlip{Namespace: g.Namespace, Name: g.Name, From: from, To: to})
		}
	}
	return out
}

// gatewaysDue reports whether the gateways step still has to run.
func (r *run) gatewaysDue() bool {
	s := r.mu.Status.Step(v1alpha1.StepGateways)
	return r.mu.Spec.FlipGateways && (s == nil || s.State == v1alpha1.StepRunning)
}

// flipGateways is the gateways step: decide and record (once), then flip
// every recorded gateway not flipped yet, recording each flip.
func (r *run) flipGateways(ctx context.Context) stepResult {
	st := &r.mu.Status
	if r.Gateways == nil {
		return stepTransient{err: fmt.Errorf("failed to flip gateways of MeshUpgrade %q: no gateway switcher configured", r.mu.Name)}
	}
	if st.Step(v1alpha1.StepGateways) == nil {
		live, err := r.Gateways.List(ctx)
		if err != nil {
			return stepTransient{err: err}
		}
		st.Gateways = GatewayFlips(live, r.mu.Spec.From, r.mu.Spec.To)
		r.setStep(v1alpha1.StepGateways, v1alpha1.StepRunning, fmt.Sprintf("flipping %d gateway(s) from %s to %s", len(st.Gateways), r.mu.Spec.From, r.mu.Spec.To))
		if err := r.flush(ctx, true); err != nil {
			return stepTransient{err: fmt.Errorf("failed to record the intent to flip %d gateway(s): %w", len(st.Gateways), err)}
		}
	}
	for i := range st.Gateways {
		g := &st.Gateways[i]
		if g.Done {
			continue
		}
		if err := r.Gateways.Switch(ctx, g.Namespace, g.Name, g.To); err != nil {
			if ctx.Err() != nil {
				return stepTransient{err: context.Cause(ctx)}
			}
			return stepFailed{reason: v1alpha1.ReasonRolloutFailed, why: fmt.Sprintf("gateway %s/%s could not flip to %s: %v", g.Namespace, g.Name, g.To, err)}
		}
		g.Done = true
		r.event("gateway", 0, fmt.Sprintf("%s/%s now selects %s (was %s)", g.Namespace, g.Name, g.To, g.From))
		if err := r.flush(ctx, true); err != nil {
			return stepTransient{err: err}
		}
	}
	r.setStep(v1alpha1.StepGateways, v1alpha1.StepDone, fmt.Sprintf("%d gateway(s) select %s", len(st.Gateways), r.mu.Spec.To))
	return transientIf(r.flush(ctx, true))
}

// flipGatewaysBack points every recorded gateway back at its previous
// colour (a rollback, or a halt: the new revision is suspect). Gateways
// recorded but not marked flipped are flipped back too, since a kill may have
// come between the write and its record; a Service already on its previous
// colour is not written.
func (r *run) flipGatewaysBack(ctx context.Context) error {
	st := &r.mu.Status
	if len(st.Gateways) == 0 {
		return nil
	}
	if r.Gateways == nil {
		return fmt.Errorf("failed to flip back %d gateway(s) of MeshUpgrade %q: no gateway switcher configured", len(st.Gateways), r.mu.Name)
	}
	for i := range st.Gateways {
		g := &st.Gateways[i]
		if err := r.Gateways.Switch(ctx, g.Namespace, g.Name, g.From); err != nil {
			return fmt.Errorf("failed to flip gateway %s/%s back to %s: %w", g.Namespace, g.Name, g.From, err)
		}
		if g.Done {
			g.Done = false
			r.event("gateway", 0, fmt.Sprintf("%s/%s now selects %s (was %s)", g.Namespace, g.Name, g.From, g.To))
		}
	}
	if s := st.Step(v1alpha1.StepGateways); s != nil && s.State != v1alpha1.StepReverted {
		r.setStep(v1alpha1.StepGateways, v1alpha1.StepReverted, fmt.Sprintf("%d gateway(s) select %s again", len(st.Gateways), r.mu.Spec.From))
	}
	return r.flush(ctx, true)
}

// setStep records a step's state, appending its record the first time.
func (r *run) setStep(name string, state v1alpha1.StepState, msg string) {
	e := recordStep(&r.mu.Status, name, state, msg, metav1.NewTime(r.now()))
	r.dirty = true
	if r.Observer != nil {
		r.Observer.Event(e)
	}
}

// recordStep records a step's state in st, appending its record the first
// time, with the history entry it returns.
func recordStep(st *v1alpha1.MeshUpgradeStatus, name string, state v1alpha1.StepState, msg string, now metav1.Time) v1alpha1.Event {
	if s := st.Step(name); s != nil {
		s.State, s.Message, s.At = state, msg, now
	} else {
		st.Steps = append(st.Steps, v1alpha1.StepStatus{Name: name, State: state, Message: msg, At: now})
	}
	e := v1alpha1.Event{At: now, Type: "step", Message: fmt.Sprintf("%s: %s (%s)", name, state, msg)}
	st.History = append(st.History, e)
	if len(st.History) > maxHistory {
		st.History = append(st.History[:0:0], st.History[len(st.History)-maxHistory:]...)
	}
	return e
}
