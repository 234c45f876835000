package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/report"
)

// liveView prints a run as it goes: on a terminal one progress bar redrawn in
// place under the event lines; otherwise (CI logs, pipes) plain lines, with a
// progress line at every tenth of the way so logs stay short.
type liveView struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool
	bar bool
	// lastTick and lastRollback say which tenth of which measure was last
	// printed: moves, or during a rollback the workloads put back.
	lastTick     int
	lastRollback bool
}

func newLiveView(w io.Writer) *liveView {
	f, ok := w.(*os.File)
	return &liveView{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// Event implements upgrade.Observer.
func (v *liveView) Event(e v1alpha1.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.bar {
		fmt.Fprint(v.w, "\r\033[K")
		v.bar = false
	}
	wave := ""
	if e.Wave > 0 {
		wave = fmt.Sprintf("wave %d ", e.Wave)
	}
	fmt.Fprintf(v.w, "%s %-9s %s%s\n", e.At.Format("15:04:05"), e.Type, wave, e.Message)
}

// Progress implements upgrade.Observer.
func (v *liveView) Progress(st *v1alpha1.MeshUpgradeStatus) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := st.Counts
	done := c.Succeeded + c.Failed + c.RolledBack
	if c.Total == 0 {
		return
	}
	line := fmt.Sprintf("wave %d/%d  %s  %d/%d moved, %d failed, %d rolled back",
		st.CurrentWave, st.Waves, progressBar(done, c.Total, 30), c.Succeeded, c.Total, c.Failed, c.RolledBack)
	if vms := report.VMCounts(st.Workloads); vms.Total > 0 {
		line += fmt.Sprintf(" (VMs %d/%d moved)", vms.Succeeded, vms.Total)
	}
	if v.tty {
		fmt.Fprint(v.w, "\r\033[K"+line)
		v.bar = true
		return
	}
	// During a rollback the moved count falls as the rolled-back count
	// rises, so done stands still (at the total when every move had
	// ended): the tenths are counted on the workloads put back instead, or
	// every single one would print a line.
	measure, rollback := done, st.Phase == v1alpha1.PhaseRollingBack || st.Phase == v1alpha1.PhaseRolledBack
	if rollback {
		measure = c.RolledBack
	}
	if tick := measure * 10 / c.Total; tick != v.lastTick || rollback != v.lastRollback {
		v.lastTick, v.lastRollback = tick, rollback
		fmt.Fprintln(v.w, "progress  "+line)
	}
}

// progressBar draws [#####-----] for done of total.
func progressBar(done, total, width int) string {
	n := min(width, done*width/max(total, 1))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}
