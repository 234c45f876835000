package report

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// fleetCSS is the run report's own stylesheet, taken from its template at
// start-up, so the fleet page looks like every other meshroll report
// without a second copy of the styles to keep in step.
func fleetCSS() template.CSS {
	b, err := templates.ReadFile("report.html.tmpl")
	if err != nil {
		return ""
	}
	s := string(b)
	start, end := strings.Index(s, "<style>"), strings.Index(s, "</style>")
	if start < 0 || end < start {
		return ""
	}
	return template.CSS(s[start+len("<style>") : end])
}

// fleetPage is the parsed fleet report template.
var fleetPage = template.Must(template.New("fleet").Funcs(template.FuncMap{
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"dur":   formatDuration,
}).Parse(fleetTemplate))

// fleetData is what the fleet template renders.
type fleetData struct {
	CSS       template.CSS
	FU        *v1alpha1.FleetUpgrade
	Class     string
	Generated time.Time
	Duration  time.Duration
	Counts    map[string]int
	Failed    []v1alpha1.FleetClusterStatus
	Timeline  fleetTimeline
	Mix       []mixRow
	MixKeys   []mixKey
	Gates     []gateRow
}

// fleetTimeline is the clusters × time chart: one row per cluster, grouped
// by stage, a bar from start to upgrade (upgrading) and on to the end of its
// soak, coloured by outcome.
type fleetTimeline struct {
	W, H, LabelW, PlotW int
	Rows                []timelineRow
	Ticks               []tick
	Stages              []stageBand
}

type timelineRow struct {
	Y                      int
	Name, Stage, Title     string
	Canary                 bool
	UpX, UpW, SoakX, SoakW int
	Class                  string
}

type stageBand struct {
	Y, H  int
	Name  string
	State v1alpha1.StageState
}

type mixKey struct{ Key, Color string }

type mixRow struct {
	Cluster, Stage string
	Total          int
	Parts          []mixPart
}

type mixPart struct {
	Key, Color string
	Pods       int
	Percent    float64
}

type gateRow struct {
	Cluster string
	Gate    v1alpha1.FleetGate
}

// FleetHTML writes a FleetUpgrade's report as one self-contained HTML page:
// the clusters × stages timeline, the revision mix of every cluster, the
// latest gate evidence and, when it halted, why.
func FleetHTML(w io.Writer, fu *v1alpha1.FleetUpgrade, now time.Time) error {
	if fu == nil {
		return fmt.Errorf("failed to render fleet report: no FleetUpgrade")
	}
	d := fleetData{CSS: fleetCSS(), FU: fu, Generated: now, Counts: map[string]int{}}
	d.Class = fleetClass(fu.Status.Phase)
	end := now
	if fu.Status.CompletedAt != nil {
		end = fu.Status.CompletedAt.Time
	}
	if fu.Status.StartedAt != nil {
		d.Duration = end.Sub(fu.Status.StartedAt.Time)
	}
	for _, c := range fu.Status.Clusters {
		d.Counts[string(c.State)]++
		if c.State == v1alpha1.ClusterFailed {
			d.Failed = append(d.Failed, c)
		}
		for _, g := range c.Gates {
			d.Gates = append(d.Gates, gateRow{Cluster: c.Name, Gate: g})
		}
	}
	d.Timeline = newFleetTimeline(fu, end)
	d.Mix, d.MixKeys = newMix(fu)
	bw := bufio.NewWriter(w)
	if err := fleetPage.Execute(bw, d); err != nil {
		return fmt.Errorf("failed to render fleet report for FleetUpgrade %q: %w", fu.Name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("failed to write fleet report for FleetUpgrade %q: %w", fu.Name, err)
	}
	return nil
}

func fleetClass(p v1alpha1.FleetPhase) string {
	switch p {
	case v1alpha1.FleetSucceeded:
		return "ok"
	case v1alpha1.FleetHalted, v1alpha1.FleetRolledBack:
		return "bad"
	case v1alpha1.FleetWaitingApproval, v1alpha1.FleetWaitingForMember, v1alpha1.FleetRollingBack:
		return "warn"
	case v1alpha1.FleetProgressing, v1alpha1.FleetSoaking:
		return "run"
	}
	return "idle"
}

func clusterClass(s v1alpha1.ClusterState) string {
	switch s {
	case v1alpha1.ClusterSucceeded:
		return "ok"
	case v1alpha1.ClusterFailed:
		return "bad"
	case v1alpha1.ClusterRolledBack, v1alpha1.ClusterRollingBack:
		return "warn"
	case v1alpha1.ClusterUpgrading, v1alpha1.ClusterSoaking:
		return "run"
	}
	return "idle"
}

const (
	tlWidth  = 1100
	tlLabel  = 220
	tlRow    = 28
	tlStageH = 22
)

func newFleetTimeline(fu *v1alpha1.FleetUpgrade, end time.Time) fleetTimeline {
	tl := fleetTimeline{W: tlWidth, LabelW: tlLabel, PlotW: tlWidth - tlLabel - 20}
	start := end
	if fu.Status.StartedAt != nil {
		start = fu.Status.StartedAt.Time
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	x := func(t *time.Time) int {
		if t == nil {
			return tlLabel + tl.PlotW
		}
		f := float64(t.Sub(start)) / float64(span)
		return tlLabel + int(max(0, min(1, f))*float64(tl.PlotW))
	}
	y := 30
	for _, st := range fu.Status.Stages {
		band := stageBand{Y: y, Name: st.Name, State: st.State}
		y += tlStageH
		for _, c := range fu.Status.Clusters {
			if c.Stage != st.Name {
				continue
			}
			r := timelineRow{Y: y, Name: c.Name, Stage: c.Stage, Canary: c.Canary, Class: clusterClass(c.State),
				Title: fmt.Sprintf("%s: %s %s", c.Name, c.State, c.Message)}
			if c.StartedAt != nil {
				up := c.UpgradedAt
				fin := c.FinishedAt
				var upT, finT *time.Time
				if up != nil {
					upT = &up.Time
				}
				if fin != nil {
					finT = &fin.Time
				} else {
					finT = &end
				}
				if upT == nil {
					upT = finT
				}
				r.UpX = x(&c.StartedAt.Time)
				r.UpW = max(2, x(upT)-r.UpX)
				r.SoakX = r.UpX + r.UpW
				r.SoakW = max(0, x(finT)-r.SoakX)
			}
			tl.Rows = append(tl.Rows, r)
			y += tlRow
		}
		band.H = y - band.Y
		tl.Stages = append(tl.Stages, band)
	}
	tl.H = y + 30
	for i := 0; i <= 4; i++ {
		t := start.Add(span * time.Duration(i) / 4)
		anchor := "middle"
		if i == 4 {
			anchor = "end"
		}
		tl.Ticks = append(tl.Ticks, tick{Pos: float64(tlLabel + tl.PlotW*i/4), Label: t.UTC().Format("15:04:05"), Anchor: anchor})
	}
	return tl
}

// newMix is each cluster's pods per proxy version when last seen, as
// stacked bars with one colour per version across the page.
func newMix(fu *v1alpha1.FleetUpgrade) ([]mixRow, []mixKey) {
	keys := map[string]bool{}
	for _, c := range fu.Status.Clusters {
		for k := range c.Mix {
			keys[k] = true
		}
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	colour := map[string]string{}
	var legend []mixKey
	for i, k := range sorted {
		colour[k] = seriesColor(i)
		if k == "none" {
			colour[k] = "#9ca3af"
		}
		legend = append(legend, mixKey{Key: k, Color: colour[k]})
	}
	var rows []mixRow
	for _, c := range fu.Status.Clusters {
		r := mixRow{Cluster: c.Name, Stage: c.Stage}
		for _, k := range sorted {
			r.Total += c.Mix[k]
		}
		for _, k := range sorted {
			if n := c.Mix[k]; n > 0 {
				r.Parts = append(r.Parts, mixPart{Key: k, Color: colour[k], Pods: n, Percent: 100 * float64(n) / float64(r.Total)})
			}
		}
		rows = append(rows, r)
	}
	return rows, legend
}
