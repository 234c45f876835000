package upgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
)

// TestSettle pins what each kind of move error does to the record: only a
// real rollout failure is a failure (spends the budget); a workload gone or
// unmovable is skipped; an API error that outlasted its retries leaves the
// workload pending and stops the run; the run's own end changes nothing.
func TestSettle(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		outcome v1alpha1.Outcome
		stop    bool
		msg     string
	}{
		{"done", nil, v1alpha1.OutcomeSucceeded, false, ""},
		{"rollout failed", errors.New("rollout of Deployment a/x failed: progress deadline exceeded"), v1alpha1.OutcomeFailed, false, "progress deadline"},
		{"deleted by its owner", fmt.Errorf("Deployment a/x: %w", dataplane.ErrGone), v1alpha1.OutcomeSkipped, false, "deleted during the run"},
		{"paused since planning", &dataplane.NotRestartableError{Kind: "Deployment", Namespace: "a", Name: "x", Reason: "Deployment is paused"}, v1alpha1.OutcomeSkipped, false, "paused; nothing was written"},
		{"API down for good", &retryGaveUp{err: apierrors.NewServiceUnavailable("down"), attempts: 7}, v1alpha1.OutcomePending, true, "stopped after 7 attempts"},
		{"run interrupted", context.Canceled, v1alpha1.OutcomePending, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu := &v1alpha1.MeshUpgrade{Status: v1alpha1.MeshUpgradeStatus{Workloads: []v1alpha1.WorkloadStatus{
				{Kind: "Deployment", Namespace: "a", Name: "x", Wave: 1, Outcome: v1alpha1.OutcomePending}}}}
			r := &run{Engine: &Engine{}, mu: mu}
			stop := r.settle(outcome{i: 0, err: tt.err})
			w := mu.Status.Workloads[0]
			if w.Outcome != tt.outcome || stop != tt.stop || !strings.Contains(w.Message, tt.msg) || (r.stop != nil) != tt.stop {
				t.Errorf("outcome %s (%q), stop %t (%v); want %s with %q, stop %t", w.Outcome, w.Message, stop, r.stop, tt.outcome, tt.msg, tt.stop)
			}
		})
	}
}
