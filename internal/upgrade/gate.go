package upgrade

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/inventory"
)

// readinessGate is the name of the gate that is always evaluated first.
const readinessGate = "readiness"

// gate evaluates readiness of the wave's workloads and every configured gate,
// right after the wave's moves or (afterBake) at the end of its bake. A
// failed gate is a stepFailed: the loop rolls back (policy Auto) or halts. A
// measurement error is not a failed check (gate_policy.go): it is retried,
// and by the gate's onError either stops the run resumably or counts as a
// failed check; a failed check below the gate's failureThreshold is recorded
// and checked again after its interval.
func (r *run) gate(ctx context.Context, wave int, afterBake bool) stepResult {
	st := &r.mu.Status
	when := "after wave"
	if afterBake {
		when = "after the bake of wave"
	}
	r.setPhase(v1alpha1.PhaseGating, v1alpha1.ReasonMigrating, fmt.Sprintf("evaluating gates %s %d", when, wave))
	passed, evidence, err := r.readiness(ctx, wave)
	if err != nil {
		return stepTransient{err: err}
	}
	r.record(wave, afterBake, readinessGate, passed, evidence)
	failed := ""
	if !passed {
		failed = readinessGate + ": " + evidence
	}
	for _, g := range r.mu.Spec.Gates {
		if failed != "" {
			break
		}
		ok, ev, res := r.check(ctx, g, wave, afterBake)
		if res != nil {
			return res
		}
		if !ok {
			failed = g.Name + ": " + ev
		}
	}
	if failed == "" {
		msg := fmt.Sprintf("gates %s %d passed", when, wave)
		if afterBake || r.mu.Spec.Strategy.Bake.Duration <= 0 {
			// The wave is over: the pause before the next one counts
			// from here.
			now := metav1.NewTime(r.now())
			st.LastWaveDoneAt = &now
		}
		r.event("gate", wave, msg)
		r.setPhase(v1alpha1.PhaseMigrating, v1alpha1.ReasonGatePassed, msg)
		return transientIf(r.flush(ctx, true))
	}
	return stepFailed{reason: v1alpha1.ReasonGateFailed, why: fmt.Sprintf("gate %s %d failed (%s)", when, wave, failed)}
}

// readiness re-judges every workload of the wave that moved from the
// informer cache: a workload that rolled out fine can lose pods before the
// gate runs. Workloads the run skipped or put back are not the wave's to
// judge, and one its owner deleted since is skipped, not a failed gate.
func (r *run) readiness(ctx context.Context, wave int) (bool, string, error) {
	n, notReady := 0, []string{}
	var vms map[string]inventory.VMProxy // the agents' reports, listed once (vm_engine.go)
	for i := range r.mu.Status.Workloads {
		w := &r.mu.Status.Workloads[i]
		if w.Wave != wave || w.Outcome != v1alpha1.OutcomeSucceeded {
			continue
		}
		if templateOnly(w.Kind) {
			n++
			continue // moved by its template (template.go): nothing runs to be ready
		}
		if w.Kind == VMKind {
			why, err := r.vmReady(ctx, wave, w, &vms) // vm_engine.go: the agent's report
			if err != nil {
				return false, "", err
			}
			if w.Outcome == v1alpha1.OutcomeSucceeded {
				n++
			}
			if why != "" {
				notReady = append(notReady, w.Ref()+": "+why)
			}
			continue
		}
		obj := r.exec.Watcher.Get(w.Kind, w.Namespace, w.Name)
		if obj == nil {
			err := r.retry(ctx, func(ctx context.Context) error {
				var err error
				obj, err = r.exec.Current(ctx, w.Kind, w.Namespace, w.Name)
				return err
			})
			if errors.Is(err, dataplane.ErrGone) {
				w.Outcome, w.Message = v1alpha1.OutcomeSkipped, "deleted after it moved (by its owner?): nothing left to judge"
				r.event("skipped", wave, w.Ref()+": "+w.Message)
				continue
			}
			if err != nil {
				return false, "", fmt.Errorf("failed to read %s for the readiness gate: %w", w.Ref(), err)
			}
		}
		n++
		if ro, ok := rolloutOf(obj); !ok {
			notReady = append(notReady, w.Ref()+": "+ro.Message)
		}
	}
	if len(notReady) > 0 {
		return false, fmt.Sprintf("%d of %d workloads not ready: %s", len(notReady), n, notReady[0]), nil
	}
	return true, fmt.Sprintf("%d of %d workloads rolled out and available", n, n), nil
}

func rolloutOf(obj any) (dataplane.Rollout, bool) {
	r, _ := dataplane.Judge(obj)
	return r, r.Done
}

// record appends one gate verdict.
func (r *run) record(wave int, afterBake bool, name string, passed bool, evidence string) {
	r.mu.Status.Gates = append(r.mu.Status.Gates, v1alpha1.GateResult{Wave: wave, Name: name, Passed: passed, AfterBake: afterBake, At: metav1.NewTime(r.now()), Evidence: evidence})
	verdict := "passed"
	if !passed {
		verdict = "FAILED"
	}
	r.event("gate", wave, fmt.Sprintf("%s %s: %s", name, verdict, evidence))
}
