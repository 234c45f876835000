package dataplane

import (
	"encoding/json"
	"fmt"

	"github.com/meshroll/meshroll/internal/istio"
)

// Annotations and labels meshroll writes on workloads it moves.
const (
	// LabelUpgrade names the MeshUpgrade that moved a workload. The
	// revision-assignment webhook selects objects by it, so the API server
	// never calls the webhook for anything meshroll did not move.
	LabelUpgrade = "meshroll.io/upgrade"
	// AnnotationToken is the restart token of the move, written in the same
	// patch as the move itself so that a resumed run recognises a workload it
	// already moved and never restarts it twice.
	AnnotationToken = "meshroll.io/restart-token"
	// AnnotationPrevious records the pod-template values the move replaced
	// (JSON of Previous), in the same write, so rollback can restore the
	// exact previous template even after a crash.
	AnnotationPrevious = "meshroll.io/previous-template"
	// AnnotationRestartedAt is the pod-template annotation `kubectl rollout
	// restart` sets; changing it makes the workload controller replace pods.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
)

// Previous is what a forward move replaced in the pod template. A nil field
// was absent. When the workload still carried an earlier upgrade's move (A
// moved it, then B), Upgrade, Token and Prior keep A's marks, so B's
// rollback puts back exactly A's moved state and A's rollback can still
// restore the template from before A.
type Previous struct {
	Rev         *string `json:"rev"`
	RestartedAt *string `json:"restartedAt"`
	// Upgrade and Token are the earlier upgrade's label and restart token.
	Upgrade *string `json:"upgrade,omitempty"`
	Token   *string `json:"token,omitempty"`
	// Prior is the earlier upgrade's own Previous.
	Prior *Previous `json:"prior,omitempty"`
}

// maxPriorDepth bounds how many earlier upgrades one annotation remembers:
// a mesh upgraded every month for years must not grow it without end. An
// upgrade older than that can no longer be rolled back exactly, and its
// rollback finds the workload carrying no mark of its own.
const maxPriorDepth = 6

// trim drops what lies deeper than depth earlier upgrades.
func (p *Previous) trim(depth int) {
	for q := p; q != nil; q = q.Prior {
		if depth--; depth <= 0 {
			q.Prior = nil
			return
		}
	}
}

// Template is the part of a workload object a move reads.
type Template struct {
	Labels              map[string]string
	Annotations         map[string]string
	TemplateLabels      map[string]string
	TemplateAnnotations map[string]string
}

// Forward is the merge patch that moves a workload: for setRev != "" the pod
// template's istio.io/rev label becomes setRev (mechanism Pod), and in every
// case the restart annotation becomes token. It returns nil when the
// workload already carries token: the move happened before, possibly in a
// run that was killed before it recorded it.
func Forward(t Template, upgrade, token, setRev string) ([]byte, error) {
	if t.Annotations[AnnotationToken] == token && t.TemplateAnnotations[AnnotationRestartedAt] == token {
		return nil, nil
	}
	prev := Previous{Rev: lookup(t.TemplateLabels, istio.LabelRev), RestartedAt: lookup(t.TemplateAnnotations, AnnotationRestartedAt)}
	old, marked := t.Annotations[AnnotationPrevious]
	switch by := t.Labels[LabelUpgrade]; {
	case marked && by == upgrade:
		// A move of this upgrade was already recorded (for instance a
		// rollback was interrupted and the run goes forward again): keep
		// the values from before the first move.
		if err := json.Unmarshal([]byte(old), &prev); err != nil {
			return nil, fmt.Errorf("failed to read annotation %s: %w", AnnotationPrevious, err)
		}
	case marked && by != "":
		// An earlier upgrade's move: remember its marks, so this upgrade's
		// rollback hands the workload back to it intact.
		var prior Previous
		if err := json.Unmarshal([]byte(old), &prior); err != nil {
			return nil, fmt.Errorf("failed to read annotation %s: %w", AnnotationPrevious, err)
		}
		prev.Upgrade, prev.Token, prev.Prior = &by, lookup(t.Annotations, AnnotationToken), &prior
		prev.trim(maxPriorDepth)
	}
	prevJSON, err := json.Marshal(prev)
	if err != nil {
		return nil, err
	}
	tl := map[string]any{}
	if setRev != "" {
		tl[istio.LabelRev] = setRev
	}
	patch := map[string]any{
		"metadata": map[string]any{
			"labels":      map[string]any{LabelUpgrade: upgrade},
			"annotations": map[string]any{AnnotationToken: token, AnnotationPrevious: string(prevJSON)},
		},
		"spec": templatePatch(tl, map[string]any{AnnotationRestartedAt: token}),
	}
	return json.Marshal(patch)
}

// Restore is the merge patch that puts back the pod template a forward move
// replaced and removes meshroll's marks; the workload controller then returns
// to its previous pods (for a Deployment, its previous ReplicaSet). It
// returns nil when the workload carries no move of upgrade.
func Restore(t Template, upgrade string) ([]byte, error) {
	raw, ok := t.Annotations[AnnotationPrevious]
	if !ok || t.Labels[LabelUpgrade] != upgrade {
		return nil, nil
	}
	var prev Previous
	if err := json.Unmarshal([]byte(raw), &prev); err != nil {
		return nil, fmt.Errorf("failed to read annotation %s: %w", AnnotationPrevious, err)
	}
	// The earlier upgrade's marks come back with its moved template, or
	// go when there was none.
	var prior any
	if prev.Prior != nil && prev.Upgrade != nil {
		b, err := json.Marshal(prev.Prior)
		if err != nil {
			return nil, err
		}
		prior = string(b)
	}
	patch := map[string]any{
		"metadata": map[string]any{
			"labels":      map[string]any{LabelUpgrade: orNull(prev.Upgrade)},
			"annotations": map[string]any{AnnotationToken: orNull(prev.Token), AnnotationPrevious: prior},
		},
		"spec": templatePatch(
			map[string]any{istio.LabelRev: orNull(prev.Rev)},
			map[string]any{AnnotationRestartedAt: orNull(prev.RestartedAt)}),
	}
	return json.Marshal(patch)
}

func templatePatch(labels, annotations map[string]any) map[string]any {
	md := map[string]any{"annotations": annotations}
	if len(labels) > 0 {
		md["labels"] = labels
	}
	return map[string]any{"template": map[string]any{"metadata": md}}
}

func lookup(m map[string]string, k string) *string {
	if v, ok := m[k]; ok {
		return &v
	}
	return nil
}

func orNull(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// MovedOver lists the earlier upgrades whose moves the workload's current
// move was made over, newest first, read from its previous-template
// annotation. It is causal evidence of order where timestamps (whole
// seconds) cannot tell two quick upgrades apart: an upgrade named here ran
// before the one whose label the workload carries.
func MovedOver(annotations map[string]string) []string {
	raw, ok := annotations[AnnotationPrevious]
	if !ok {
		return nil
	}
	var prev Previous
	if json.Unmarshal([]byte(raw), &prev) != nil {
		return nil
	}
	var out []string
	for p := &prev; p != nil && p.Upgrade != nil; p = p.Prior {
		out = append(out, *p.Upgrade)
	}
	return out
}
