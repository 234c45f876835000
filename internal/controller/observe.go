package controller

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// observer turns what the engine records into Kubernetes Events, log lines
// and metrics while a step runs. One is made per engine session (its
// Steps span several reconciles while rollouts are in flight).
type observer struct {
	mu       *v1alpha1.MeshUpgrade // the object events are about
	recorder events.EventRecorder
	metrics  *Metrics
	log      logr.Logger

	lock sync.Mutex
	// gates is how many gate verdicts were already told; lastMetrics
	// paces metric updates (Progress comes after every outcome).
	gates       int
	lastMetrics time.Time
}

func newObserver(mu *v1alpha1.MeshUpgrade, rec events.EventRecorder, m *Metrics, log logr.Logger) *observer {
	return &observer{mu: mu, recorder: rec, metrics: m, log: log, gates: len(mu.Status.Gates)}
}

// warnings are the history entries an operator must look at.
var warnings = map[string]bool{"failed": true, "reverted": true, "rollback": true, "skipped": true,
	string(v1alpha1.PhaseHalted): true, string(v1alpha1.PhaseRollingBack): true, string(v1alpha1.PhaseRolledBack): true}

// Event is called for every history entry: steps, waves, relabels, tag
// moves, gateway flips, phase changes, halts and rollbacks.
func (o *observer) Event(e v1alpha1.Event) {
	typ := corev1.EventTypeNormal
	if warnings[e.Type] {
		typ = corev1.EventTypeWarning
	}
	o.log.Info(e.Message, "event", e.Type, "wave", e.Wave)
	o.emit(typ, eventReason(e.Type), e.Message)
}

// Progress is called after every recorded outcome: new gate verdicts
// become events (one per gate and verdict), and the metrics follow the
// status at most once a second.
func (o *observer) Progress(st *v1alpha1.MeshUpgradeStatus) {
	o.lock.Lock()
	defer o.lock.Unlock()
	for _, g := range st.Gates[min(o.gates, len(st.Gates)):] {
		typ, verdict := corev1.EventTypeNormal, "passed"
		if !g.Passed {
			typ, verdict = corev1.EventTypeWarning, "failed"
		}
		when := "after"
		if g.AfterBake {
			when = "after the bake of"
		}
		msg := fmt.Sprintf("gate %s %s %s wave %d: %s", g.Name, verdict, when, g.Wave, g.Evidence)
		o.log.Info(msg, "wave", g.Wave, "gate", g.Name, "passed", g.Passed)
		o.emit(typ, "Gate"+strings.ToUpper(verdict[:1])+verdict[1:], msg)
	}
	o.gates = len(st.Gates)
	if time.Since(o.lastMetrics) >= time.Second {
		o.lastMetrics = time.Now()
		o.metrics.Observe(o.mu.Name, o.mu.Spec.From, o.mu.Spec.To, st)
	}
}

func (o *observer) emit(typ, reason, msg string) {
	if o.recorder == nil {
		return
	}
	// The note field is capped at 1 kB by the API server.
	if len(msg) > 1000 {
		msg = msg[:1000] + "…"
	}
	o.recorder.Eventf(o.mu, nil, typ, reason, "Reconcile", "%s", msg)
}

// eventReason makes a history type ("wave", "Halted") an Event reason
// ("Wave", "Halted").
func eventReason(typ string) string {
	if typ == "" {
		return "Step"
	}
	return strings.ToUpper(typ[:1]) + typ[1:]
}
