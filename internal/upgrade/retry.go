package upgrade

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
)

// This file holds the engine's answer to transient errors: an API server
// that answers 500, 429 or 409, stalls, or drops a connection says nothing
// about the mesh. Such errors are retried with backoff where they happen (a
// workload's move, a namespace relabel, a tag move, a status write, a gate
// measurement); only when they outlast the retry budget does the run stop,
// recorded and resumable, and never does one count as a failed workload or
// roll anything back.

const (
	retryFirst = 250 * time.Millisecond
	retryMax   = 15 * time.Second
	// retryFor is how long one operation is retried by default before the
	// run stops: a minute of an unavailable API server is an outage to
	// report, not a reason to spin.
	retryFor = time.Minute
	// retryMinAttempts keeps a few attempts even when single attempts are
	// slow (stalled requests hitting their timeout).
	retryMinAttempts = 4
)

// transient reports whether err is worth another attempt and how long the
// server asked to wait (Retry-After) first. The run's own end (ctx) is
// never transient; neither is a workload that is gone or cannot be moved.
func transient(ctx context.Context, err error) (bool, time.Duration) {
	if err == nil || ctx.Err() != nil {
		return false, 0
	}
	var notRestartable *dataplane.NotRestartableError
	if errors.Is(err, dataplane.ErrGone) || errors.As(err, &notRestartable) {
		return false, 0
	}
	if s, ok := apierrors.SuggestsClientDelay(err); ok {
		return true, time.Duration(s) * time.Second
	}
	var netErr net.Error
	switch {
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err):
		return true, 0
	case apierrors.IsConflict(err):
		// The next attempt re-reads the object and decides again.
		return true, 0
	case errors.Is(err, context.DeadlineExceeded):
		// A request's own timeout: the run's context is still alive.
		return true, 0
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err), utilnet.IsConnectionRefused(err),
		utilnet.IsHTTP2ConnectionLost(err), errors.As(err, &netErr):
		return true, 0
	}
	return false, 0
}

// retryGaveUp wraps a transient error that outlasted the retry budget: the
// run stops where it is (every write so far is recorded) and a rerun
// resumes; nothing fails and nothing is rolled back.
type retryGaveUp struct {
	err      error
	attempts int
}

func (e *retryGaveUp) Error() string { return e.err.Error() }
func (e *retryGaveUp) Unwrap() error { return e.err }

// backoff is exponential with full jitter, at least what the server asked.
type backoff struct {
	next time.Duration
}

func (b *backoff) wait(asked time.Duration) time.Duration {
	if b.next == 0 {
		b.next = retryFirst
	}
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, retryMax)
	return max(d, asked)
}

// retry runs fn until it succeeds, fails for good, or transient errors have
// lasted RetryFor (and at least retryMinAttempts attempts); the last error
// is then wrapped in *retryGaveUp. Each retried error is counted for the
// run's summary.
func (r *run) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	return r.retryIf(ctx, transient, fn)
}

// retryIf is retry with another judge of what is transient (a gate
// measurement is not an API call).
func (r *run) retryIf(ctx context.Context, isTransient func(context.Context, error) (bool, time.Duration), fn func(ctx context.Context) error) error {
	start := time.Now()
	var b backoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		again, asked := isTransient(ctx, err)
		if !again {
			return err
		}
		if attempt >= retryMinAttempts && time.Since(start) >= r.retryFor() {
			return &retryGaveUp{err: err, attempts: attempt}
		}
		r.retried.Add(1)
		select {
		case <-time.After(b.wait(asked)):
		case <-ctx.Done():
			return err
		}
	}
}

// request bounds one API call made by the engine itself (status writes):
// a stalled request fails and is retried.
func (r *run) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.requestTimeout())
}

func (r *run) retryFor() time.Duration {
	if r.RetryFor > 0 {
		return r.RetryFor
	}
	return retryFor
}

func (r *run) requestTimeout() time.Duration {
	if r.RequestTimeout > 0 {
		return r.RequestTimeout
	}
	return 30 * time.Second
}

// updateStatus writes the status, retrying transient errors; a conflict is
// resolved by the store (it rereads and keeps the engine's status).
func (r *run) updateStatus(ctx context.Context, mu *v1alpha1.MeshUpgrade) (*v1alpha1.MeshUpgrade, error) {
	var fresh *v1alpha1.MeshUpgrade
	err := r.retry(ctx, func(ctx context.Context) error {
		rctx, cancel := r.request(ctx)
		defer cancel()
		var err error
		fresh, err = r.Store.UpdateStatus(rctx, mu)
		return err
	})
	return fresh, err
}
