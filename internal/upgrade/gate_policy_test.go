package upgrade

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	gatecheck "github.com/meshroll/meshroll/internal/gate"
)

// memStore keeps the MeshUpgrade in memory.
type memStore struct{ mu *v1alpha1.MeshUpgrade }

func (m *memStore) Get(context.Context, string) (*v1alpha1.MeshUpgrade, error) {
	return m.mu.DeepCopy(), nil
}

func (m *memStore) UpdateStatus(_ context.Context, mu *v1alpha1.MeshUpgrade) (*v1alpha1.MeshUpgrade, error) {
	m.mu = mu.DeepCopy()
	return mu.DeepCopy(), nil
}

// scriptedGate answers Evaluate from a script, then repeats the last entry.
type scriptedGate struct {
	script []verdictOrErr
	calls  int
}

type verdictOrErr struct {
	passed bool
	err    error
}

func (s *scriptedGate) Evaluate(context.Context, v1alpha1.Gate, int) (bool, string, error) {
	v := s.script[min(s.calls, len(s.script)-1)]
	s.calls++
	if v.err != nil {
		return false, "", v.err
	}
	if v.passed {
		return true, "error rate 0 < 0.01", nil
	}
	return false, "error rate 0.2 ≥ 0.01", nil
}

func gateRun(g *scriptedGate) *run {
	mu := &v1alpha1.MeshUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "u"}}
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	return &run{Engine: &Engine{Store: &memStore{mu: mu}, Gates: g, RetryFor: 10 * time.Millisecond, Now: func() time.Time { return now }}, mu: mu}
}

// TestDefect5GateMeasurementErrorIsNotAFailedCheck pins issue 9 defect 5's
// Prometheus case at the unit level: one error used to be recorded as a
// failed gate (and roll the mesh back).
func TestDefect5GateMeasurementErrorIsNotAFailedCheck(t *testing.T) {
	down := errors.New("failed to query Prometheus: 503 Service Unavailable")
	prom := func(onError string, threshold int) v1alpha1.Gate {
		return v1alpha1.Gate{Name: "error-rate", OnError: onError, FailureThreshold: threshold,
			Prometheus: &v1alpha1.PrometheusGate{Query: "x", Op: "<", Threshold: "0.01"}}
	}
	t.Run("one error is measured again", func(t *testing.T) {
		g := &scriptedGate{script: []verdictOrErr{{err: down}, {passed: true}}}
		r := gateRun(g)
		ok, _, res := r.check(t.Context(), prom("", 0), 1, false)
		if !ok || res != nil || g.calls != 2 || len(r.mu.Status.Gates) != 1 || !r.mu.Status.Gates[0].Passed {
			t.Errorf("passed %t, result %#v after %d calls, verdicts %+v; want one passed verdict after 2 calls", ok, res, g.calls, r.mu.Status.Gates)
		}
	})
	t.Run("lasting errors stop the run without a verdict", func(t *testing.T) {
		g := &scriptedGate{script: []verdictOrErr{{err: down}}}
		r := gateRun(g)
		_, _, res := r.check(t.Context(), prom(v1alpha1.GateOnErrorRetry, 0), 1, false)
		tr, ok := res.(stepTransient)
		if !ok || !strings.Contains(tr.err.Error(), "not a failed check") || len(r.mu.Status.Gates) != 0 || g.calls < retryMinAttempts {
			t.Errorf("result %#v after %d calls, verdicts %+v; want a transient stop, no verdict", res, g.calls, r.mu.Status.Gates)
		}
	})
	t.Run("onError Fail counts it as a failed check", func(t *testing.T) {
		r := gateRun(&scriptedGate{script: []verdictOrErr{{err: down}}})
		ok, ev, res := r.check(t.Context(), prom(v1alpha1.GateOnErrorFail, 0), 1, false)
		if ok || res != nil || !strings.Contains(ev, "onError Fail") {
			t.Errorf("passed %t, result %#v, evidence %q; want a failed verdict", ok, res, ev)
		}
	})
	t.Run("failed checks below the threshold are checked again", func(t *testing.T) {
		g := &scriptedGate{script: []verdictOrErr{{passed: false}}}
		r := gateRun(g)
		for i := 1; i <= 2; i++ {
			_, _, res := r.check(t.Context(), prom("", 3), 1, false)
			if w, ok := res.(stepWait); !ok || w.until.Sub(r.now()) != defaultGateInterval {
				t.Fatalf("check %d: result %#v, want a wait of %s", i, res, defaultGateInterval)
			}
		}
		ok, ev, res := r.check(t.Context(), prom("", 3), 1, false)
		if ok || res != nil || !strings.Contains(ev, "3 checks failed in a row") || len(r.mu.Status.Gates) != 3 {
			t.Errorf("third check: passed %t, result %#v, evidence %q, %d verdicts; want the gate failed", ok, res, ev, len(r.mu.Status.Gates))
		}
	})
	t.Run("a passed check resets the count", func(t *testing.T) {
		g := &scriptedGate{script: []verdictOrErr{{passed: false}, {passed: true}, {passed: false}}}
		r := gateRun(g)
		for i := 0; i < 3; i++ {
			_, _, res := r.check(t.Context(), prom("", 2), 1, false)
			if i != 1 && res == nil {
				t.Errorf("check %d ended the gate; want a wait (only 1 failed check in a row)", i+1)
			}
		}
	})
	t.Run("an invalid gate fails at once", func(t *testing.T) {
		r := gateRun(&scriptedGate{script: []verdictOrErr{{err: &gatecheck.InvalidError{Gate: "error-rate", Problems: []string{"query does not parse"}}}}})
		ok, _, res := r.check(t.Context(), prom("", 3), 1, false)
		if ok || res != nil {
			t.Errorf("passed %t, result %#v; want a failed verdict at once", ok, res)
		}
	})
}
