package vmagent

import (
	"context"
	"maps"
	"time"
)

// report writes phase, running version, target, error and heartbeat on the
// WorkloadEntry when they change, and the heartbeat alone every Heartbeat.
func (a *Agent) report(ctx context.Context) {
	if a.entry == nil {
		return
	}
	ann := a.Status()
	now := a.now()
	if maps.Equal(ann, a.reported) && now.Sub(a.lastBeat) < time.Duration(a.cfg.Heartbeat) {
		return
	}
	patch := map[string]*string{AnnotationHeartbeat: ptr(now.UTC().Format(time.RFC3339))}
	for k, v := range ann {
		if v == "" {
			patch[k] = nil
		} else {
			patch[k] = ptr(v)
		}
	}
	if err := a.entry.Annotate(ctx, patch); err != nil {
		a.log.Warn("status not reported", "err", err)
		return
	}
	a.reported, a.lastBeat = ann, now
}

// Status is what the agent reports, without the heartbeat.
func (a *Agent) Status() map[string]string {
	cur, _ := a.layout.Current()
	target := a.journal.To
	if !a.journal.GaveUp.IsZero() {
		target = a.journal.GaveUp
	}
	t := ""
	if !target.IsZero() {
		t = target.String()
	}
	tr := ""
	if !a.journal.Transition.IsZero() {
		tr = a.journal.Transition.Format(time.RFC3339)
	}
	return map[string]string{
		AnnotationPhase:      string(a.journal.Phase),
		AnnotationRevision:   cur.Revision,
		AnnotationVersion:    cur.Version,
		AnnotationTarget:     t,
		AnnotationError:      a.journal.Error,
		AnnotationTransition: tr,
		AnnotationOverride:   a.override,
		AnnotationAgent:      a.version,
	}
}

func ptr(s string) *string { return &s }
