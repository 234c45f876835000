package report

import (
	"bufio"
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// templates holds the HTML report. It is parsed once at start-up; a parse
// error is a programming error caught by every test of this package.
//
//go:embed report.html.tmpl
var templates embed.FS

// page is the parsed HTML report template.
var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"ts":           func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"clock":        func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"dur":          formatDuration,
	"millis":       func(ms int64) string { return formatDuration(time.Duration(ms) * time.Millisecond) },
	"add":          func(a, b float64) float64 { return a + b },
	"phaseClass":   phaseClass,
	"outcomeClass": outcomeClass,
	"eventClass":   eventClass,
	"join":         strings.Join,
	"ms":           ms,
}).ParseFS(templates, "report.html.tmpl"))

// htmlData is what the template renders.
type htmlData struct {
	view
	Chart chart
	// Traffic is the probe's series; nil when no probe ran (no section).
	Traffic   *trafficChart
	Generated time.Time
	// MovedPercent is Succeeded/Total as a whole percentage for the
	// progress bar.
	MovedPercent int
	// Plan summarises the spec in one line: wave sizes, parallelism, gates.
	Plan string
}

// HTML writes u's run report to w as one self-contained HTML page (inline CSS
// and SVG; no scripts, fonts or images fetched from anywhere) so it can be
// attached to a ticket or mailed and still open years later, offline. now
// stamps the page and measures the duration of a run still in progress.
func HTML(w io.Writer, u *v1alpha1.MeshUpgrade, now time.Time) error {
	return HTMLWithTraffic(w, u, nil, now)
}

// HTMLWithTraffic is HTML with a section for what a load probe measured
// during the run (t, nil when none ran): calls and errors per second and
// p50/p99 latency, with the run's waves and steps marked.
func HTMLWithTraffic(w io.Writer, u *v1alpha1.MeshUpgrade, t *Traffic, now time.Time) error {
	if u == nil {
		return fmt.Errorf("failed to render HTML report: no MeshUpgrade")
	}
	d := htmlData{
		view:      newView(u, now),
		Chart:     newChart(u),
		Generated: now,
		Plan:      planLine(u.Spec),
	}
	if t != nil {
		tc := newTrafficChart(u, t)
		d.Traffic = &tc
	}
	if d.Counts.Total > 0 {
		d.MovedPercent = 100 * d.Counts.Succeeded / d.Counts.Total
	}
	bw := bufio.NewWriter(w)
	if err := page.Execute(bw, d); err != nil {
		return fmt.Errorf("failed to render HTML report for MeshUpgrade %q: %w", u.Name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("failed to write HTML report for MeshUpgrade %q: %w", u.Name, err)
	}
	return nil
}

// planLine describes the strategy the way an operator wrote it.
func planLine(s v1alpha1.MeshUpgradeSpec) string {
	var sizes []string
	for _, w := range s.Strategy.Waves {
		if w.Percent > 0 {
			sizes = append(sizes, fmt.Sprintf("%d%%", w.Percent))
		} else {
			sizes = append(sizes, fmt.Sprint(w.Count))
		}
	}
	var parts []string
	if len(sizes) > 0 {
		parts = append(parts, "waves "+strings.Join(sizes, ", "))
	}
	if s.Strategy.Parallelism > 0 {
		parts = append(parts, fmt.Sprintf("parallelism %d", s.Strategy.Parallelism))
	}
	if p := s.Strategy.PauseBetweenWaves.Duration; p > 0 {
		parts = append(parts, "pause "+formatDuration(p))
	}
	var gates []string
	for _, g := range s.Gates {
		gates = append(gates, g.Name)
	}
	if len(gates) > 0 {
		parts = append(parts, "gates "+strings.Join(gates, ", "))
	}
	if s.Rollback != "" {
		parts = append(parts, "rollback "+string(s.Rollback))
	}
	return strings.Join(parts, " · ")
}

// phaseClass maps a phase to the colour family of its badge: green for
// done, red for stopped short, amber for waiting on someone, blue for busy.
func phaseClass(p v1alpha1.Phase) string {
	switch p {
	case v1alpha1.PhaseSucceeded:
		return "ok"
	case v1alpha1.PhaseHalted, v1alpha1.PhaseRolledBack:
		return "bad"
	case v1alpha1.PhaseRollingBack, v1alpha1.PhasePaused:
		return "warn"
	case v1alpha1.PhaseMigrating, v1alpha1.PhaseGating, v1alpha1.PhaseBaking:
		return "run"
	}
	return "idle"
}

// outcomeClass maps a workload outcome to a badge colour family.
func outcomeClass(o v1alpha1.Outcome) string {
	switch o {
	case v1alpha1.OutcomeSucceeded:
		return "ok"
	case v1alpha1.OutcomeFailed, v1alpha1.OutcomeRollbackFailed:
		return "bad"
	case v1alpha1.OutcomeRolledBack:
		return "warn"
	}
	return "idle"
}

// eventClass colours a history event by what its type says happened. Event
// types are free-form strings written by the engine, so this matches words
// rather than an enumeration and falls back to neutral.
func eventClass(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case strings.Contains(t, "fail"), strings.Contains(t, "halt"), strings.Contains(t, "error"):
		return "bad"
	case strings.Contains(t, "rollback"), strings.Contains(t, "rolledback"), strings.Contains(t, "pause"):
		return "warn"
	case strings.Contains(t, "pass"), strings.Contains(t, "succeed"), strings.Contains(t, "done"), strings.Contains(t, "complete"):
		return "ok"
	}
	return "run"
}
