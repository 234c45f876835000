package upgrade

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
	gatecheck "github.com/meshroll/meshroll/internal/gate"
)

// This file applies a gate's error policy and failure threshold, so that a
// measurement error is never taken for a failed check on its own, and one
// failed check does not roll back a mesh whose gate asks for several (as
// Flagger's threshold and Argo Rollouts' failureLimit do).

// defaultGateInterval is the wait between checks of a gate whose
// failureThreshold is above 1.
const defaultGateInterval = 10 * time.Second

// check evaluates configured gate g and records its verdict. It returns the
// verdict, or a non-nil step result when the gate step must end without one:
// a wait before the next check (a failed check below the threshold, recorded
// as such) or a transient stop (measurement errors outlasted their retries
// with onError Retry: nothing is recorded, and a rerun measures again).
func (r *run) check(ctx context.Context, g v1alpha1.Gate, wave int, afterBake bool) (bool, string, stepResult) {
	ok, ev, err := r.measure(ctx, g, wave)
	never := false
	if err != nil {
		var invalid *gatecheck.InvalidError
		switch {
		case ctx.Err() != nil:
			return false, "", stepTransient{err: context.Cause(ctx)}
		case errors.As(err, &invalid):
			// A spec that can never pass is a failed gate whatever the
			// policy: waiting would not change it.
			ok, ev, never = false, "the gate cannot be evaluated: "+err.Error(), true
		case g.OnError == v1alpha1.GateOnErrorFail:
			ok, ev = false, "could not measure (onError Fail counts it as a failed check): "+err.Error()
		default:
			r.event("gate", wave, fmt.Sprintf("%s could not be measured: %v", g.Name, err))
			return false, "", stepTransient{err: fmt.Errorf("failed to measure gate %q after wave %d for %s: %w; a measurement error is not a failed check (onError Retry), so the run stopped without a verdict: rerun to measure again", g.Name, wave, r.retryFor(), err)}
		}
	}
	if threshold := max(1, g.FailureThreshold); !ok && !never && threshold > 1 {
		n := r.failedChecks(wave, afterBake, g.Name) + 1
		if n < threshold {
			r.record(wave, afterBake, g.Name, false, fmt.Sprintf("check %d of %d failed: %s", n, threshold, ev))
			if err := r.flush(ctx, true); err != nil {
				return false, "", stepTransient{err: err}
			}
			interval := g.Interval.Duration
			if interval <= 0 {
				interval = defaultGateInterval
			}
			return false, "", stepWait{until: r.now().Add(interval)}
		}
		ev = fmt.Sprintf("%d checks failed in a row: %s", n, ev)
	}
	r.record(wave, afterBake, g.Name, ok, ev)
	return ok, ev, nil
}

// measure evaluates g, retrying measurement errors with backoff for
// RetryFor; an invalid gate is not retried.
func (r *run) measure(ctx context.Context, g v1alpha1.Gate, wave int) (ok bool, ev string, err error) {
	if r.Gates == nil {
		return false, "", &gatecheck.InvalidError{Gate: g.Name, Problems: []string{"no gate evaluator is configured"}}
	}
	err = r.retryIf(ctx, measurementError, func(ctx context.Context) error {
		var err error
		ok, ev, err = r.Gates.Evaluate(ctx, g, wave)
		return err
	})
	var gaveUp *retryGaveUp
	if errors.As(err, &gaveUp) {
		err = fmt.Errorf("%d attempts: %w", gaveUp.attempts, gaveUp.err)
	}
	return ok, ev, err
}

// measurementError says that a gate's error is worth measuring again:
// anything but an invalid gate or the run's own end.
func measurementError(ctx context.Context, err error) (bool, time.Duration) {
	var invalid *gatecheck.InvalidError
	if err == nil || ctx.Err() != nil || errors.As(err, &invalid) {
		return false, 0
	}
	return true, 0
}

// failedChecks counts the failed checks of one gate recorded last in a row
// for the wave (right after its moves, or after its bake): the threshold
// survives a resumed run because the checks are in the status.
func (r *run) failedChecks(wave int, afterBake bool, name string) int {
	n := 0
	for _, g := range r.mu.Status.Gates {
		if g.Wave != wave || g.AfterBake != afterBake || g.Name != name {
			continue
		}
		if g.Passed {
			n = 0
		} else {
			n++
		}
	}
	return n
}
