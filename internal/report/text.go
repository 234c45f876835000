package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// textHistory is how many of the newest history events the text report
// prints; the full timeline belongs in the HTML report.
const textHistory = 10

// timeLayout is used for every absolute time in the text report: UTC with a
// Z so reports from different operators' machines compare line by line.
const timeLayout = "2006-01-02 15:04:05Z"

// Text writes a compact terminal summary of u to w: what ran, how far it got,
// which gates and workloads failed and why, and what the engine did last. It
// is what `meshroll status` prints after a run, so it favours the questions an
// operator asks first ("did it work, and if not, what do I look at?").
func Text(w io.Writer, u *v1alpha1.MeshUpgrade) error {
	if u == nil {
		return fmt.Errorf("failed to render text report: no MeshUpgrade")
	}
	v := newView(u, time.Time{})
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }

	p("MeshUpgrade %s: %s → %s\n", oneLine(v.Name), oneLine(v.From), oneLine(v.To))
	p("  Phase:\t%s", v.Phase)
	if v.Message != "" {
		p(" — %s", oneLine(v.Message))
	}
	p("\n")
	if v.Started != nil {
		p("  Started:\t%s\n", v.Started.UTC().Format(timeLayout))
	} else {
		p("  Started:\tnot yet\n")
	}
	switch {
	case v.Completed != nil:
		p("  Completed:\t%s (took %s)\n", v.Completed.UTC().Format(timeLayout), formatDuration(v.Duration))
	case v.Started != nil:
		p("  Completed:\tnot yet\n")
	}
	c := v.Counts
	p("  Workloads:\t%d of %d moved, %d failed, %d rolled back, %d pending", c.Succeeded, c.Total, c.Failed, c.RolledBack, c.Pending)
	if len(v.Skipped) > 0 {
		p(", %d skipped", len(v.Skipped))
	}
	p("\n")
	if m := v.VMs; m.Total > 0 {
		p("  VMs:\t%d of %d moved, %d failed, %d rolled back, %d pending (included above)\n", m.Succeeded, m.Total, m.Failed, m.RolledBack, m.Pending)
	}
	if v.Waves > 0 {
		p("  Wave:\t%d of %d\n", v.CurrentWave, v.Waves)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("failed to write text report: %w", err)
	}

	if len(v.WaveRows) > 0 {
		p("\nWAVE\tWORKLOADS\tPODS\tSUCCEEDED\tFAILED\tROLLED BACK\tPENDING\tSLOWEST ROLLOUT\n")
		for _, r := range v.WaveRows {
			mark := ""
			if r.Current {
				mark = " ◀"
			}
			slow := "-"
			if r.Slowest > 0 {
				slow = fmt.Sprintf("%s (%s)", formatDuration(r.Slowest), oneLine(r.SlowestRef))
			}
			p("%d%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Wave, mark, r.Workloads, r.Pods, r.Succeeded, r.Failed, r.RolledBack, r.Pending, slow)
		}
	}
	if len(v.Gates) > 0 {
		p("\nGATES\nWAVE\tGATE\tRESULT\tEVIDENCE\n")
		for _, g := range v.Gates {
			p("%d\t%s\t%s\t%s\n", g.Wave, oneLine(g.Name), verdict(g.Passed), oneLine(g.Evidence))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("failed to write text report: %w", err)
	}

	if len(v.Failures) > 0 {
		p("\nFAILURES\n")
		for _, f := range v.Failures {
			p("  %s (wave %d, %s)\n", oneLine(f.Ref()), f.Wave, f.Outcome)
			if f.Message != "" {
				p("    %s\n", oneLine(f.Message))
			}
		}
	}
	if len(v.Skipped) > 0 {
		p("\nSKIPPED (a restart cannot move these)\n")
		for _, s := range v.Skipped {
			p("  %s %s/%s\n    %s\n", oneLine(s.Kind), oneLine(s.Namespace), oneLine(s.Name), oneLine(s.Reason))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("failed to write text report: %w", err)
	}
	moves := labelMoveLines(v.Namespaces, "namespace") + labelMoveLines(v.Tags, "tag")
	if moves != "" {
		p("\nLABEL MOVES\n%s", moves)
	}
	if len(v.History) > 0 {
		shown := lastEvents(v.History, textHistory)
		p("\nHISTORY (last %d of %d)\n", len(shown), len(v.History))
		for _, e := range shown {
			wave := ""
			if e.Wave > 0 {
				wave = fmt.Sprintf("wave %d", e.Wave)
			}
			p("  %s\t%s\t%s\t%s\n", e.At.UTC().Format(timeLayout), oneLine(e.Type), wave, oneLine(e.Message))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("failed to write text report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("failed to write text report: %w", err)
	}
	return nil
}

// verdict spells a gate result.
func verdict(passed bool) string {
	if passed {
		return "pass"
	}
	return "FAIL"
}

// labelMoveLines renders namespace or tag moves, one per line.
func labelMoveLines(ms []v1alpha1.LabelMove, what string) string {
	var b strings.Builder
	for _, m := range ms {
		state := "pending"
		if m.Done {
			state = "done"
		}
		fmt.Fprintf(&b, "  %s %s\t%s → %s\twave %d\t%s\n", what, oneLine(m.Name), oneLine(m.From), oneLine(m.To), m.Wave, state)
	}
	return b.String()
}
