package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// TestDefectLiveViewLinePerWorkloadInRollback: in a log (no terminal) the
// live view prints a progress line per tenth of the run. During a rollback
// of a run whose moves had all ended, done stayed at the total, and the
// "done == total" case printed one line per workload put back (1,000
// lines for 1,000 workloads). It now counts tenths of the rollback.
func TestDefectLiveViewLinePerWorkloadInRollback(t *testing.T) {
	var out bytes.Buffer
	v := newLiveView(&out)
	const total = 1000
	st := &v1alpha1.MeshUpgradeStatus{Phase: v1alpha1.PhaseMigrating, Waves: 1, CurrentWave: 1}
	for i := 1; i <= total; i++ {
		st.Counts = v1alpha1.Counts{Total: total, Succeeded: i}
		v.Progress(st)
	}
	moving := strings.Count(out.String(), "\n")
	st.Phase = v1alpha1.PhaseRollingBack
	for i := 1; i <= total; i++ {
		st.Counts = v1alpha1.Counts{Total: total, Succeeded: total - i, RolledBack: i}
		v.Progress(st)
	}
	rolling := strings.Count(out.String(), "\n") - moving
	if moving > 11 || rolling > 11 {
		t.Errorf("%d progress lines while moving and %d while rolling back %d workloads, want at most 11 each:\n%s", moving, rolling, total, out.String())
	}
	if !strings.Contains(out.String(), "0/1000 moved, 0 failed, 1000 rolled back") {
		t.Errorf("no line for the finished rollback:\n%s", out.String())
	}
}
