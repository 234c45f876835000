package upgrade

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
)

// Result is what one Step ended in; the CLI's Run and the controller's
// reconciler decide on it the same way.
type Result struct {
	// Final is set once the run reached Succeeded, Halted or RolledBack
	// (with no rollback requested of it).
	Final bool
	// RequeueAt is when the run has work again: the end of a pause, a
	// bake or a gate's interval. Zero when Final or Paused.
	RequeueAt time.Time
	// Paused is set while an operator paused the run (spec.paused): it
	// has work again only when the MeshUpgrade is edited.
	Paused bool
	// InFlight counts the moves still running when the Step yielded (its
	// slice ended, Engine.Slice): RequeueAt is now, and the Session that
	// took the Step holds them until its next Step records them.
	InFlight int
}

// Session is an engine's hold on one MeshUpgrade across Steps: its lease,
// its rollout watcher and, after a Step that yielded (Engine.Slice), the
// run whose moves are still in flight. The controller keeps one per
// running upgrade between reconciles; Run and Engine.Step use one each.
// Its methods may be called from several goroutines (a manager stopping
// closes it while a reconcile may be stepping): they take turns.
type Session struct {
	lock    sync.Mutex
	e       *Engine
	name    string
	ctx     context.Context
	watcher *dataplane.Watcher
	// stopWatch cancels the session's context (its watcher and its moves
	// in flight); release gives the lease up.
	stopWatch context.CancelFunc
	release   func()
	// run is the run a yielded Step left with moves in flight; nil when
	// the next Step starts from the stored record.
	run    *run
	closed bool
}

// Close ends the session. Moves still in flight (a yielded Step) are
// cancelled and their outcomes recorded as far as they got: each is
// recorded pending, and the next engine resumes it without restarting
// anything twice (the restart token).
func (s *Session) Close() {
	s.stopWatch() // first and unlocked: a Step running now returns at once
	s.lock.Lock()
	defer s.lock.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if r := s.run; r != nil {
		r.collect(context.WithoutCancel(s.ctx))
		s.drop()
	}
	s.release()
}

// drop forgets the held run: the next Step rereads the record.
func (s *Session) drop() {
	if s.run != nil && s.run.flushTick != nil {
		s.run.flushTick.Stop()
	}
	s.run = nil
}

// Open takes the upgrade's lease (a second engine is refused, with
// *HeldError, before it reads or writes anything) and prepares the
// watcher. The lease is held, and renewed, until Close; ctx bounds the
// whole session, moves in flight included.
func (e *Engine) Open(ctx context.Context, name string) (*Session, error) {
	s := &Session{e: e, name: name, ctx: ctx, watcher: e.Watcher, release: func() {}}
	if e.Lease != nil {
		lctx, release, err := e.Lease.Acquire(ctx, name)
		if err != nil {
			return nil, err
		}
		s.ctx, s.release = lctx, release
	}
	s.ctx, s.stopWatch = context.WithCancel(s.ctx)
	return s, nil
}

// Step takes the named MeshUpgrade as far as it goes without waiting: it
// moves waves, gates and finishes until the run must wait (RequeueAt),
// reaches a final phase (Final) or stops on an error (everything done so
// far is recorded; the next Step resumes). It never sleeps: the caller
// requeues for the wait. It opens a session for this one Step; a caller
// that sets Slice keeps a Session (Open, Session.Step) instead, as the
// controller does, since closing one cancels the moves a yield left in
// flight.
func (e *Engine) Step(ctx context.Context, name string) (*v1alpha1.MeshUpgrade, Result, error) {
	s, err := e.Open(ctx, name)
	if err != nil {
		return nil, Result{}, err
	}
	defer s.Close()
	return s.step()
}

// Run drives the named MeshUpgrade until it succeeds, halts, rolls back or
// ctx ends: the same steps as Step, sleeping through each wait (and
// rereading the MeshUpgrade meanwhile, so a requested rollback ends a long
// bake at once). It returns the final object.
func (e *Engine) Run(ctx context.Context, name string) (*v1alpha1.MeshUpgrade, error) {
	s, err := e.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for {
		mu, res, err := s.step()
		if err != nil {
			return mu, err
		}
		if res.Final {
			return mu, phaseErr(mu)
		}
		if err := e.sleep(s.ctx, name, res); err != nil {
			return mu, err
		}
	}
}

// Step is one Step of the session's upgrade (see Engine.Step). seen is
// the generation the caller last saw (the controller's cache): when a
// yielded run is held and the MeshUpgrade's spec changed since, the run
// rereads it first, so a pause or a rollback requested meanwhile is acted
// on in this Step.
func (s *Session) Step(seen int64) (*v1alpha1.MeshUpgrade, Result, error) {
	s.lock.Lock()
	defer s.lock.Unlock()
	if r := s.run; r != nil && seen > r.mu.Generation {
		fresh, err := s.e.Store.Get(s.ctx, s.name)
		if err != nil {
			// The moves go on; the caller retries the Step or closes.
			return nil, Result{}, fmt.Errorf("failed to get MeshUpgrade %q: %w", s.name, err)
		}
		s.adopt(fresh)
	}
	return s.step()
}

// Latest is a copy of the held run's record, progress not yet written
// included; nil when no run is held (the store has the latest then).
func (s *Session) Latest() *v1alpha1.MeshUpgrade {
	s.lock.Lock()
	defer s.lock.Unlock()
	if s.run == nil {
		return nil
	}
	return s.run.mu.DeepCopy()
}

// Adopt takes what another writer stored since the held run's last write
// (the controller's conditions, an operator's spec edit): the metadata
// the next write needs, the spec, the observed generation, and the
// conditions the engine does not set (Progressing, Complete and RolledBack
// are its own, and may be newer in the run than in the store).
func (s *Session) Adopt(stored *v1alpha1.MeshUpgrade) {
	s.lock.Lock()
	defer s.lock.Unlock()
	s.adopt(stored)
}

func (s *Session) adopt(stored *v1alpha1.MeshUpgrade) {
	r := s.run
	if r == nil {
		return
	}
	if r.pending != nil {
		// The write in flight would bring back the spec and metadata it
		// saw, older than stored's.
		_ = r.landFlush(<-r.pending)
	}
	r.mu.ObjectMeta, r.mu.Spec = *stored.ObjectMeta.DeepCopy(), *stored.Spec.DeepCopy()
	r.mu.Status.ObservedGeneration = stored.Status.ObservedGeneration
	for _, c := range stored.Status.Conditions {
		if !engineCondition[c.Type] {
			meta.SetStatusCondition(&r.mu.Status.Conditions, c)
		}
	}
}

// engineCondition names the conditions setPhase writes.
var engineCondition = map[string]bool{v1alpha1.ConditionProgressing: true, v1alpha1.ConditionComplete: true, v1alpha1.ConditionRolledBack: true}

// step runs the engine's loop once, on the held run or on a new one read
// from the store.
func (s *Session) step() (*v1alpha1.MeshUpgrade, Result, error) {
	ctx, e := s.ctx, s.e
	r := s.run
	if r == nil {
		mu, err := e.Store.Get(ctx, s.name)
		if err != nil {
			return nil, Result{}, fmt.Errorf("failed to get MeshUpgrade %q: %w", s.name, err)
		}
		if !mu.Status.Planned() && !mu.Spec.RollbackRequested {
			// A rollback needs no plan: it undoes the install step alone.
			return mu, Result{}, fmt.Errorf("MeshUpgrade %q has no frozen plan; create it with `meshroll upgrade`", s.name)
		}
		if mu.Status.Phase.Final() && !mu.Spec.RollbackRequested {
			return mu, Result{Final: true}, nil
		}
		if s.watcher == nil {
			// Started on first need and kept for the session: a Run's later
			// steps reuse it.
			w, err := dataplane.NewWatcher(ctx, e.Kube)
			if err != nil {
				return mu, Result{}, err
			}
			s.watcher = w
		}
		r = &run{Engine: e, mu: mu, exec: &dataplane.Executor{Kube: e.Kube, Watcher: s.watcher, Upgrade: s.name, RequestTimeout: e.RequestTimeout}, index: map[string]int{}}
		for i, wl := range mu.Status.Workloads {
			r.index[wl.Ref()] = i
		}
	}
	until, err := r.loop(ctx)
	if n := r.retried.Swap(0); n > 0 {
		r.event("retry", r.mu.Status.CurrentWave, fmt.Sprintf("%d transient error(s) retried in this step", n))
	}
	if err == nil && r.yielded && len(r.inflight) > 0 {
		// No write here: a synchronous one would hold every freed slot
		// until it lands, each slice. Progress is written by the next
		// Step's writes (at most FlushEvery apart, the one in flight
		// lands there); what a kill loses of it is found again on the
		// workloads (the restart token), as with any batched progress.
		s.run = r
		return r.mu, Result{RequeueAt: e.clock(), InFlight: len(r.inflight)}, nil
	}
	if ferr := r.flush(context.WithoutCancel(ctx), true); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if len(r.inflight) > 0 {
		// A yielded run whose Step failed: the moves end recorded before
		// the record is reread.
		r.collect(context.WithoutCancel(ctx))
	}
	r.flushTick.Stop()
	s.run = nil
	if err != nil {
		return r.mu, Result{}, err
	}
	if r.mu.Status.Phase.Final() {
		return r.mu, Result{Final: true}, nil
	}
	return r.mu, Result{RequeueAt: until, Paused: r.paused}, nil
}

// sleep waits until res.RequeueAt (a paused run: until the pause is
// lifted), rereading the MeshUpgrade every PollEvery so that a rollback
// requested meanwhile (by `meshroll rollback`) ends the wait at once
// instead of after a long soak.
func (e *Engine) sleep(ctx context.Context, name string, res Result) error {
	for {
		left := res.RequeueAt.Sub(e.clock())
		if !res.Paused && left <= 0 {
			return nil
		}
		if res.Paused {
			left = e.pollEvery()
		}
		select {
		case <-time.After(min(left, e.pollEvery())):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		fresh, err := e.Store.Get(ctx, name)
		if err != nil {
			continue // a failed read only delays noticing a request
		}
		if fresh.Spec.RollbackRequested || (res.Paused && !fresh.Spec.Paused) {
			return nil
		}
	}
}

// clock is the engine's Now.
func (e *Engine) clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}
