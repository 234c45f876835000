package upgrade

import (
	"context"
	"errors"
	"fmt"
	"time"

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
}

// session is what consecutive steps share: the held lease and the
// rollout watcher.
type session struct {
	e       *Engine
	name    string
	ctx     context.Context
	watcher *dataplane.Watcher
	// stopWatch stops a watcher the session started; close also gives
	// the lease up.
	stopWatch context.CancelFunc
	release   func()
}

func (s *session) close() {
	s.stopWatch()
	s.release()
}

// open takes the upgrade's lease (a second engine is refused before it
// reads or writes anything) and prepares the watcher.
func (e *Engine) open(ctx context.Context, name string) (*session, error) {
	s := &session{e: e, name: name, ctx: ctx, watcher: e.Watcher, release: func() {}}
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
// far is recorded; the next Step resumes). It never sleeps, so the
// controller calls it once per reconcile and requeues for the wait.
func (e *Engine) Step(ctx context.Context, name string) (*v1alpha1.MeshUpgrade, Result, error) {
	s, err := e.open(ctx, name)
	if err != nil {
		return nil, Result{}, err
	}
	defer s.close()
	return s.step()
}

// Run drives the named MeshUpgrade until it succeeds, halts, rolls back or
// ctx ends: the same steps as Step, sleeping through each wait (and
// rereading the MeshUpgrade meanwhile, so a requested rollback ends a long
// bake at once). It returns the final object.
func (e *Engine) Run(ctx context.Context, name string) (*v1alpha1.MeshUpgrade, error) {
	s, err := e.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
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

// step reads the MeshUpgrade and runs the engine's loop on it once.
func (s *session) step() (*v1alpha1.MeshUpgrade, Result, error) {
	ctx, e := s.ctx, s.e
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
	r := &run{Engine: e, mu: mu, exec: &dataplane.Executor{Kube: e.Kube, Watcher: s.watcher, Upgrade: s.name, RequestTimeout: e.RequestTimeout}, index: map[string]int{}}
	for i, wl := range mu.Status.Workloads {
		r.index[wl.Ref()] = i
	}
	until, err := r.loop(ctx)
	if n := r.retried.Load(); n > 0 {
		r.event("retry", r.mu.Status.CurrentWave, fmt.Sprintf("%d transient error(s) retried in this step", n))
	}
	if ferr := r.flush(context.WithoutCancel(ctx), true); ferr != nil {
		err = errors.Join(err, ferr)
	}
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
