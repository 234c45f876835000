package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshroll/meshroll/internal/dataplane"
)

// TestTransient pins which errors the engine retries (issue 9 defect 5: one
// 500 or timeout used to roll back the whole mesh) and which it must not.
func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	tooMany := apierrors.NewTooManyRequests("slow down", 3)
	tests := []struct {
		name  string
		err   error
		want  bool
		delay time.Duration
	}{
		{"nil", nil, false, 0},
		{"500", apierrors.NewInternalError(errors.New("boom")), true, 0},
		{"503", apierrors.NewServiceUnavailable("later"), true, 0},
		{"504 server timeout", apierrors.NewServerTimeout(gr, "patch", 0), true, 0},
		{"429 without Retry-After", apierrors.NewTooManyRequests("slow down", 0), true, 0},
		{"429 with Retry-After is honoured", fmt.Errorf("failed to patch: %w", tooMany), true, 3 * time.Second},
		{"409 is re-read and re-decided", apierrors.NewConflict(gr, "x", errors.New("changed")), true, 0},
		{"a request's own timeout", fmt.Errorf("failed to patch: %w", context.DeadlineExceeded), true, 0},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true, 0},
		{"unexpected EOF", fmt.Errorf("watch: %w", io.ErrUnexpectedEOF), true, 0},
		{"404 is not transient", apierrors.NewNotFound(gr, "x"), false, 0},
		{"403 is not transient", apierrors.NewForbidden(gr, "x", errors.New("no")), false, 0},
		{"422 is not transient", apierrors.NewInvalid(schema.GroupKind{Kind: "Deployment"}, "x", nil), false, 0},
		{"a gone workload is not retried", fmt.Errorf("x: %w", dataplane.ErrGone), false, 0},
		{"an unmovable workload is not retried", &dataplane.NotRestartableError{Reason: "paused"}, false, 0},
		{"a failed rollout is not retried", errors.New("rollout of Deployment a/b failed: progress deadline exceeded"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, delay := transient(t.Context(), tt.err)
			if got != tt.want || delay != tt.delay {
				t.Errorf("transient(%v) = %t, %s; want %t, %s", tt.err, got, delay, tt.want, tt.delay)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got, _ := transient(ctx, apierrors.NewInternalError(errors.New("boom"))); got {
		t.Error("an error after the run's own end is retried")
	}
}

// TestRetry: transient errors are retried until success; a permanent one
// ends at once; a lasting transient one ends in *retryGaveUp after
// RetryFor and at least retryMinAttempts attempts.
func TestRetry(t *testing.T) {
	r := &run{Engine: &Engine{RetryFor: 50 * time.Millisecond}}
	calls := 0
	err := r.retry(t.Context(), func(context.Context) error {
		if calls++; calls < 3 {
			return apierrors.NewInternalError(errors.New("boom"))
		}
		return nil
	})
	if err != nil || calls != 3 || r.retried.Load() != 2 {
		t.Errorf("retry = %v after %d calls, %d retried; want nil after 3, 2 retried", err, calls, r.retried.Load())
	}
	calls = 0
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "x")
	if err := r.retry(t.Context(), func(context.Context) error { calls++; return notFound }); !apierrors.IsNotFound(err) || calls != 1 {
		t.Errorf("permanent error: %v after %d calls; want NotFound after 1", err, calls)
	}
	calls = 0
	start := time.Now()
	err = r.retry(t.Context(), func(context.Context) error { calls++; return apierrors.NewServiceUnavailable("down") })
	var gaveUp *retryGaveUp
	if !errors.As(err, &gaveUp) || !apierrors.IsServiceUnavailable(err) || calls < retryMinAttempts || time.Since(start) < 50*time.Millisecond {
		t.Errorf("lasting error: %v after %d calls in %s; want *retryGaveUp wrapping 503 after ≥ %d calls and 50ms", err, calls, time.Since(start), retryMinAttempts)
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	prev := time.Duration(0)
	for i := 0; i < 12; i++ {
		d := b.wait(0)
		if d <= 0 || d > retryMax {
			t.Fatalf("wait %d = %s, want in (0, %s]", i, d, retryMax)
		}
		prev = d
	}
	if prev < retryMax/2 {
		t.Errorf("wait after 12 attempts = %s, want at least %s", prev, retryMax/2)
	}
	if d := b.wait(time.Minute); d != time.Minute {
		t.Errorf("wait with Retry-After 1m = %s, want 1m", d)
	}
}
