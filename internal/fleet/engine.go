package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// Driver runs one member's MeshUpgrade, or its rollback, to the end (or
// until ctx ends). Both resume: the member's record says where it stopped.
// The CLI's driver runs `meshroll upgrade` / `meshroll rollback` against
// the member in-process, which is the hub driving a member where no member
// controller is installed.
type Driver interface {
	Upgrade(ctx context.Context, c Cluster, fu *v1alpha1.FleetUpgrade) error
	Rollback(ctx context.Context, c Cluster, upgradeName string) error
}

// Engine runs one FleetUpgrade: each tick it rereads the FleetUpgrade (the
// spec may have gained an approval or a rollback request), observes the
// members in flight, decides (Advance), records the decision in the status
// and only then starts or resumes member runs, so a kill at any point
// resumes from the record.
type Engine struct {
	Store    Store
	Clusters []Cluster
	Driver   Driver
	// Observe reads one member; nil is ObserveMember.
	Observe func(ctx context.Context, c Cluster, upgradeName, version string, now time.Time) Observation
	// Poll is the time between ticks (default 2 s).
	Poll time.Duration
	// Lease, when set, makes this the only engine of the FleetUpgrade.
	Lease *upgrade.Lease
	// Log receives one line per event of the history.
	Log io.Writer
	// Event, when set, also receives each new event of the history (the
	// controller turns them into Kubernetes events).
	Event func(fu *v1alpha1.FleetUpgrade, ev v1alpha1.FleetEvent)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Backoff is the first wait before a member run that ended without a
	// final phase is resumed (default 2 s, doubling to 30 s).
	Backoff time.Duration
}

// refusedAfter is how many runs in a row must end in an error, with the
// member answering and no MeshUpgrade of its own, before the member counts
// as refusing the upgrade: a member cut off mid-install fails one run but
// not three, while a refusal (preflight, bad flags) repeats every time.
const refusedAfter = 3

// ErrHalted and ErrRolledBack end a run that did not succeed.
var (
	ErrHalted     = errors.New("the FleetUpgrade halted")
	ErrRolledBack = errors.New("the FleetUpgrade was rolled back")
)

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) poll() time.Duration {
	if e.Poll > 0 {
		return e.Poll
	}
	return 2 * time.Second
}

// Start validates fu against the fleet and records it, or returns the stored
// FleetUpgrade of the same name and spec (a rerun resumes). Every refusal
// comes before any write to the hub or a member.
func Start(ctx context.Context, s Store, a *controlplane.Applier, fu *v1alpha1.FleetUpgrade, clusters []Cluster) (*v1alpha1.FleetUpgrade, error) {
	if _, _, err := Freeze(fu.Spec, clusters, fu.Name); err != nil {
		return nil, err
	}
	existing, err := s.Get(ctx, fu.Name)
	switch {
	case err == nil:
		if !SameSpec(existing.Spec, fu.Spec) {
			return nil, fmt.Errorf("FleetUpgrade %q already exists with a different spec (phase %s); pick another --name, or roll it back with `meshroll fleet rollback %s`",
				fu.Name, existing.Status.Phase, fu.Name)
		}
		return existing, nil
	case apierrors.IsNotFound(err):
	default:
		return nil, fmt.Errorf("failed to read FleetUpgrade %q: %w", fu.Name, err)
	}
	if err := s.EnsureCRD(ctx, a); err != nil {
		return nil, err
	}
	return s.Create(ctx, fu)
}

// SameSpec reports whether a stored spec is the one a rerun asks for,
// ignoring what changes while it runs (approvals, the rollback request) and
// what a round trip through the API server normalises (an empty map or list
// comes back absent), so a rerun of the same command resumes.
func SameSpec(stored, asked v1alpha1.FleetUpgradeSpec) bool {
	asked.Approved, asked.RollbackRequested, asked.Paused = stored.Approved, stored.RollbackRequested, stored.Paused
	a, errA := json.Marshal(stored)
	b, errB := json.Marshal(asked)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// Run drives the FleetUpgrade until it succeeds (nil), halts (ErrHalted),
// is rolled back (ErrRolledBack) or ctx ends. It is the foreground loop over
// the same Step the hub controller's reconciler takes once per reconcile.
func (e *Engine) Run(ctx context.Context, name string) (*v1alpha1.FleetUpgrade, error) {
	if e.Lease != nil {
		lctx, release, err := e.Lease.Acquire(ctx, "fleet-"+name)
		if err != nil {
			return nil, err
		}
		defer release()
		ctx = lctx
	}
	s := e.Session()
	defer s.Stop()
	for {
		fu, next, err := s.Step(ctx, name)
		switch {
		case err != nil:
			return fu, err
		case next == StepAgain:
			continue
		case next == StepDone:
			return fu, Outcome(fu)
		}
		if err := sleep(ctx, e.poll()); err != nil {
			return fu, err
		}
	}
}

// Outcome is a final FleetUpgrade's result: nil when it succeeded,
// ErrHalted or ErrRolledBack (with its message) otherwise.
func Outcome(fu *v1alpha1.FleetUpgrade) error {
	switch fu.Status.Phase {
	case v1alpha1.FleetHalted:
		return fmt.Errorf("%w: %s", ErrHalted, fu.Status.Message)
	case v1alpha1.FleetRolledBack:
		return fmt.Errorf("%w: %s", ErrRolledBack, fu.Status.Message)
	}
	return nil
}

// Next says when the engine should step again.
type Next int

const (
	// StepWait: after the poll interval (a soak, a member run, an approval).
	StepWait Next = iota
	// StepAgain: at once (the spec changed under the status write).
	StepAgain
	// StepDone: never; the phase is final.
	StepDone
)

// Session is one engine's hold on one FleetUpgrade across steps: the member
// runs it started, which outlive a step (a member's MeshUpgrade takes
// minutes), and how much of the history it has logged.
type Session struct {
	r      *runner
	logged int
}

// Session starts a session; Stop ends its member runs.
func (e *Engine) Session() *Session {
	r := &runner{e: e, runs: map[string]*memberRun{}}
	r.setClusters(e.Clusters)
	return &Session{r: r, logged: -1}
}

// SetClusters replaces the fleet's members (the controller rereads the hub's
// Secrets each reconcile); runs in flight keep the member they started with.
func (s *Session) SetClusters(cs []Cluster) { s.r.setClusters(cs) }

// Stop cancels the session's member runs and waits for them.
func (s *Session) Stop() { s.r.stopAll() }

// Step is one decision: reread the FleetUpgrade (the spec may have gained an
// approval, a pause or a rollback request), freeze its plan on the first
// step, observe the members in flight, decide (Advance), record the decision
// in the status and only then start or resume member runs, so a kill at any
// point resumes from the record. Member runs go on in the background between
// steps, on ctx.
func (s *Session) Step(ctx context.Context, name string) (*v1alpha1.FleetUpgrade, Next, error) {
	r, e := s.r, s.r.e
	fu, err := e.Store.Get(ctx, name)
	if err != nil {
		return nil, StepWait, fmt.Errorf("failed to read FleetUpgrade %q: %w", name, err)
	}
	if len(fu.Status.Clusters) == 0 {
		if fu, err = r.freeze(ctx, fu); err != nil {
			return fu, StepWait, err
		}
	}
	if s.logged < 0 {
		s.logged = len(fu.Status.History)
	}
	now := e.now()
	st, actions, err := Advance(fu, r.observe(ctx, fu, now), now)
	if err != nil {
		return fu, StepWait, err
	}
	if !reflect.DeepEqual(st, fu.Status) {
		fu.Status = st
		stored, err := e.Store.UpdateStatus(ctx, fu)
		if apierrors.IsConflict(errors.Unwrap(err)) || apierrors.IsConflict(err) {
			return fu, StepAgain, nil // the spec changed: decide again from it
		}
		if err != nil {
			if ctx.Err() != nil {
				return fu, StepWait, context.Cause(ctx)
			}
			r.logf("status write failed (retrying): %v", err)
			return fu, StepWait, nil
		}
		fu = stored
	}
	s.logged = r.logHistory(fu, s.logged)
	// Intent is recorded: now the member runs may start.
	for _, a := range actions {
		r.ensure(ctx, fu, a)
	}
	if fu.Status.Phase.Final() {
		return fu, StepDone, nil
	}
	return fu, StepWait, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// runner is one Run's member runs.
type runner struct {
	e        *Engine
	list     []Cluster
	clusters map[string]Cluster
	mu       sync.Mutex
	runs     map[string]*memberRun
}

// memberRun is one member's upgrade or rollback in flight, or the error it
// ended with.
type memberRun struct {
	kind    ActionKind
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	ended   time.Time
	backoff time.Duration
	// failures counts the runs in a row that ended in an error.
	failures int
}

func (m *memberRun) running() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

func (r *runner) setClusters(cs []Cluster) {
	m := make(map[string]Cluster, len(cs))
	for _, c := range cs {
		m[c.Name] = c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clusters, r.list = m, cs
}

func (r *runner) cluster(name string) (Cluster, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clusters[name]
	return c, ok
}

func (r *runner) logf(format string, args ...any) {
	if r.e.Log != nil {
		fmt.Fprintf(r.e.Log, format+"\n", args...)
	}
}

// EventLine is one history event as the CLI prints it: time, type, where
// (stage/cluster) and message.
func EventLine(ev v1alpha1.FleetEvent) string {
	return fmt.Sprintf("%s %-8s %-20s %s", ev.At.UTC().Format("15:04:05"), ev.Type, eventWhere(ev), ev.Message)
}

func eventWhere(ev v1alpha1.FleetEvent) string {
	if ev.Cluster != "" {
		return ev.Stage + "/" + ev.Cluster
	}
	return ev.Stage
}

func (r *runner) logHistory(fu *v1alpha1.FleetUpgrade, from int) int {
	h := fu.Status.History
	if from > len(h) {
		from = 0
	}
	for _, ev := range h[from:] {
		r.logf("%s", EventLine(ev))
		if r.e.Event != nil {
			r.e.Event(fu, ev)
		}
	}
	return len(h)
}

// freeze records the plan, or the refusal as a condition (a FleetUpgrade
// written from Git can be invalid; nothing is touched).
func (r *runner) freeze(ctx context.Context, fu *v1alpha1.FleetUpgrade) (*v1alpha1.FleetUpgrade, error) {
	r.mu.Lock()
	list := r.list
	r.mu.Unlock()
	clusters, stages, err := Freeze(fu.Spec, list, fu.Name)
	now := metav1.NewTime(r.e.now())
	if err != nil {
		fu.Status.Phase, fu.Status.Message = v1alpha1.FleetPending, err.Error()
		fu.Status.Conditions = []metav1.Condition{{Type: v1alpha1.FleetConditionProgressing, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error(), ObservedGeneration: fu.Generation, LastTransitionTime: now}}
		if _, werr := r.e.Store.UpdateStatus(ctx, fu); werr != nil {
			err = errors.Join(err, werr)
		}
		return fu, err
	}
	fu.Status = v1alpha1.FleetUpgradeStatus{Phase: v1alpha1.FleetProgressing, Clusters: clusters, Stages: stages, StartedAt: &now,
		ObservedGeneration: fu.Generation, Message: fmt.Sprintf("planned %d cluster(s) in %d stage(s)", len(clusters), len(stages)),
		History: []v1alpha1.FleetEvent{{At: now, Type: "fleet", Message: fmt.Sprintf("planned %d cluster(s) in %d stage(s) to %s", len(clusters), len(stages), fu.Spec.Version)}}}
	return r.e.Store.UpdateStatus(ctx, fu)
}

// observe reads the watched members concurrently, each within its own
// timeout, and adds what their runs ended with.
func (r *runner) observe(ctx context.Context, fu *v1alpha1.FleetUpgrade, now time.Time) map[string]Observation {
	watched := Watched(&fu.Status)
	observe := r.e.Observe
	if observe == nil {
		observe = ObserveMember
	}
	out := make(map[string]Observation, len(watched))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range watched {
		c, ok := r.cluster(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var o Observation
			if !ok {
				o = Observation{Err: fmt.Sprintf("cluster %q is no longer registered in the fleet (its Secret or fleet-file entry is gone)", name)}
			} else {
				octx, cancel := context.WithTimeout(ctx, 20*time.Second)
				o = observe(octx, c, MemberUpgradeName(fu.Name), fu.Spec.Version, now)
				cancel()
			}
			mu.Lock()
			out[name] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, o := range out {
		if m := r.runs[name]; m != nil && !m.running() && m.err != nil && m.failures >= refusedAfter {
			o.DriverErr = fmt.Sprintf("%v (%d attempts)", m.err, m.failures)
			out[name] = o
		}
	}
	return out
}

// ensure makes sure the action's member run is going: started once, and
// resumed (with backoff) when it ended without the member reaching a final
// phase.
func (r *runner) ensure(ctx context.Context, fu *v1alpha1.FleetUpgrade, a Action) {
	c, ok := r.cluster(a.Cluster)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.runs[a.Cluster]
	if m != nil && m.running() {
		if m.kind == a.Kind {
			return
		}
		m.cancel() // a rollback replaces the upgrade run
		<-m.done
	}
	backoff, failures := r.e.Backoff, 0
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	if m != nil && m.kind == a.Kind {
		backoff, failures = min(m.backoff*2, 30*time.Second), m.failures
		if r.e.now().Before(m.ended.Add(m.backoff)) {
			return
		}
	}
	mctx, cancel := context.WithCancel(ctx)
	run := &memberRun{kind: a.Kind, cancel: cancel, done: make(chan struct{}), backoff: backoff, failures: failures}
	r.runs[a.Cluster] = run
	fuCopy := fu.DeepCopy()
	go func() {
		defer close(run.done)
		var err error
		if a.Kind == ActionUpgrade {
			err = r.e.Driver.Upgrade(mctx, c, fuCopy)
		} else {
			err = r.e.Driver.Rollback(mctx, c, MemberUpgradeName(fuCopy.Name))
		}
		run.err, run.ended = err, r.e.now()
		switch {
		case err == nil:
			run.failures = 0
		case mctx.Err() == nil:
			run.failures++
			r.logf("member %s: %s run ended (attempt %d): %v", c.Name, a.Kind, run.failures, err)
		}
	}()
}

func (r *runner) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.runs {
		m.cancel()
	}
	for _, m := range r.runs {
		<-m.done
	}
}
