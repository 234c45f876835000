package upgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
)

// This file holds the steps after the last wave's bake: tags, then prune,
// then the run succeeds. Each records its intent before it writes and its
// outcome after, like the waves.

// finishSteps runs the tags and prune steps once plan.Next says every wave
// (the last included) is migrated, gated and baked, then ends the run.
func (r *run) finishSteps(ctx context.Context, reason string) stepResult {
	if res := r.moveTags(ctx); res != nil {
		return res
	}
	pruned := ""
	if r.mu.Spec.Prune {
		res, msg := r.prune(ctx)
		if res != nil {
			return res
		}
		pruned = "; " + msg
	}
	r.setPhase(v1alpha1.PhaseSucceeded, v1alpha1.ReasonAllMigrated, reason+pruned)
	return stepFinal{}
}

// moveTags is the tags step: every recorded tag move not applied yet (tags
// no selected workload needed, and with spec.moveTags every tag that pointed
// at From when the run was planned). The moves are in the frozen plan, so
// the intent is recorded; the step's record says it started. nil means the
// step is over.
func (r *run) moveTags(ctx context.Context) stepResult {
	st := &r.mu.Status
	todo := 0
	for _, t := range st.Tags {
		if !t.Done {
			todo++
		}
	}
	if todo == 0 {
		if s := st.Step(v1alpha1.StepTags); s != nil && s.State == v1alpha1.StepRunning {
			r.setStep(v1alpha1.StepTags, v1alpha1.StepDone, fmt.Sprintf("%d tag(s) point at %s", len(st.Tags), r.mu.Spec.To))
		}
		return nil
	}
	r.setStep(v1alpha1.StepTags, v1alpha1.StepRunning, fmt.Sprintf("moving %d tag(s) to %s", todo, r.mu.Spec.To))
	if err := r.flush(ctx, true); err != nil {
		return stepTransient{err: err}
	}
	for j := range st.Tags {
		t := &st.Tags[j]
		if t.Done {
			continue
		}
		if err := r.moveTag(ctx, t.Name, t.To); err != nil {
			return stepTransient{err: err}
		}
		t.Done = true
		r.event("tag", 0, fmt.Sprintf("tag %s: %s → %s", t.Name, t.From, t.To))
		if err := r.flush(ctx, true); err != nil {
			return stepTransient{err: err}
		}
	}
	r.setStep(v1alpha1.StepTags, v1alpha1.StepDone, fmt.Sprintf("%d tag(s) point at %s", len(st.Tags), r.mu.Spec.To))
	return transientIf(r.flush(ctx, true))
}

// prune is the prune step: remove From once nothing references it. It comes
// only after the last wave's bake and the tags step; RemoveRevision reads the
// cluster again and refuses while any pod, pod template, namespace, tag,
// gateway, webhook or VM references From. A refusal does not fail the run (every
// workload did move): it is recorded with every referrer and the command
// that clears it. The returned message joins the run's final message.
func (r *run) prune(ctx context.Context) (stepResult, string) {
	st := &r.mu.Status
	from := r.mu.Spec.From
	if s := st.Step(v1alpha1.StepPrune); s != nil && s.State != v1alpha1.StepRunning {
		return nil, s.Message
	}
	if r.RemoveRevision == nil {
		return stepTransient{err: fmt.Errorf("failed to prune revision %q: no revision remover configured", from)}, ""
	}
	r.setStep(v1alpha1.StepPrune, v1alpha1.StepRunning, "removing revision "+from)
	if err := r.flush(ctx, true); err != nil {
		return stepTransient{err: err}, ""
	}
	// The old colour of every gateway this run flipped goes first: its
	// pods would keep From in use (and nothing selects them any more).
	for _, g := range st.Gateways {
		if !g.Done {
			continue
		}
		if r.Gateways == nil {
			return stepTransient{err: fmt.Errorf("failed to prune revision %q: no gateway switcher configured to remove the old colour of %s/%s", from, g.Namespace, g.Name)}, ""
		}
		if err := r.Gateways.RemoveColour(ctx, g.Namespace, g.Name, g.From); err != nil {
			return stepTransient{err: fmt.Errorf("failed to prune revision %q: %w", from, err)}, ""
		}
		r.event("gateway", 0, fmt.Sprintf("%s/%s: colour %s removed", g.Namespace, g.Name, g.From))
	}
	err := r.RemoveRevision(ctx, from)
	var inUse *controlplane.InUseError
	var gone *controlplane.NotInstalledError
	switch {
	case err == nil:
		r.setStep(v1alpha1.StepPrune, v1alpha1.StepDone, "revision "+from+" removed")
	case errors.As(err, &inUse):
		refs := make([]string, 0, len(inUse.Referrers))
		for _, ref := range inUse.Referrers {
			refs = append(refs, ref.String())
		}
		r.setStep(v1alpha1.StepPrune, v1alpha1.StepRefused, fmt.Sprintf("revision %s kept: still referenced by %d referrer(s): %s; clear them, then `meshroll revision remove %s`",
			from, len(refs), strings.Join(refs[:min(3, len(refs))], "; "), from))
	case errors.As(err, &gone) && !r.installed(ctx, from):
		// A kill after the removal and before its record: it is done.
		r.setStep(v1alpha1.StepPrune, v1alpha1.StepDone, "revision "+from+" removed")
	default:
		return stepTransient{err: fmt.Errorf("failed to prune revision %q: %w", from, err)}, ""
	}
	if err := r.flush(ctx, true); err != nil {
		return stepTransient{err: err}, ""
	}
	if s := st.Step(v1alpha1.StepPrune); s.State == v1alpha1.StepRefused {
		return nil, fmt.Sprintf("revision %s kept: still referenced (see the Prune step)", from)
	}
	return nil, st.Step(v1alpha1.StepPrune).Message
}

// installed reports whether revision rev's istiod is still there; a failed
// read answers true (never conclude a removal from an error).
func (r *run) installed(ctx context.Context, rev string) bool {
	revs, err := installedRevisions(ctx, r.Kube)
	return err != nil || revs[rev]
}
