package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// This file lays out the revision-mix chart: a stacked area of pods per
// revision over the run's samples. The geometry is computed here in Go and
// the template only prints numbers and names, so html/template escapes every
// cluster-supplied string and no script is needed to draw anything.

// Chart canvas, in SVG user units. The SVG scales to its container width.
const (
	chartW      = 960
	chartH      = 300
	chartLeft   = 56
	chartRight  = 16
	chartTop    = 16
	chartBottom = 40
	// singleBarW is the width of the bar drawn when there is only one
	// sample and therefore no time axis to spread an area over.
	singleBarW = 80
)

// seriesColor colours revisions in stacking order: From, To, then the
// others. The first two are the colours operators learn ("amber drains, blue
// fills"); revisions beyond the palette share its last colour.
func seriesColor(i int) string {
	palette := [...]string{"#f59e0b", "#2563eb", "#10b981", "#8b5cf6", "#ec4899", "#14b8a6", "#84cc16", "#64748b"}
	return palette[min(max(i, 0), len(palette)-1)]
}

// chart is everything the template needs to draw the revision mix.
type chart struct {
	W, H    int
	Plot    rect
	Series  []series
	XTicks  []tick
	YTicks  []tick
	Markers []marker
	// Samples is how many samples were drawn; 0 means the template shows
	// an empty-state message instead of the chart.
	Samples int
	First   time.Time
	Last    time.Time
	MaxPods int
}

// rect is the plot area inside the axes.
type rect struct{ X, Y, W, H float64 }

// series is one revision's band.
type series struct {
	Revision string
	Color    string
	Path     string
	// Latest is the revision's pod count in the newest sample.
	Latest int
}

// tick is an axis label at a position along its axis.
type tick struct {
	Pos   float64
	Label string
	// Anchor is the SVG text-anchor of a time label: labels at the plot's
	// edges hang inwards so they stay on the canvas.
	Anchor string
}

// marker is a gate verdict drawn as a vertical line at its time.
type marker struct {
	X      float64
	Passed bool
	Title  string
}

// newChart computes the stacked-area geometry for the samples.
func newChart(u *v1alpha1.MeshUpgrade) chart {
	c := chart{
		W: chartW, H: chartH,
		Plot: rect{X: chartLeft, Y: chartTop, W: chartW - chartLeft - chartRight, H: chartH - chartTop - chartBottom},
	}
	samples := sortedSamples(u.Status.Samples)
	c.Samples = len(samples)
	if len(samples) == 0 {
		return c
	}
	revs := revisions(u.Spec.From, u.Spec.To, samples)
	for _, s := range samples {
		total := 0
		for _, r := range revs {
			total += max(s.Pods[r], 0)
		}
		c.MaxPods = max(c.MaxPods, total)
	}
	c.First, c.Last = samples[0].At.Time, samples[len(samples)-1].At.Time
	yMax, yStep := niceScale(c.MaxPods)
	for v := 0; v <= yMax; v += yStep {
		c.YTicks = append(c.YTicks, tick{Pos: c.y(v, yMax), Label: strconv.Itoa(v)})
	}

	span := c.Last.Sub(c.First)
	xs := make([]float64, len(samples))
	if span <= 0 {
		// One sample, or all at the same instant: a single stacked bar in
		// the middle, labelled with its time.
		mid := c.Plot.X + c.Plot.W/2
		for i := range xs {
			xs[i] = mid
		}
		c.XTicks = []tick{{Pos: mid, Label: c.First.UTC().Format("15:04:05"), Anchor: "middle"}}
	} else {
		for i, s := range samples {
			xs[i] = c.Plot.X + c.Plot.W*float64(s.At.Time.Sub(c.First))/float64(span)
		}
		c.XTicks = timeTicks(c.First, c.Last, c.Plot)
		for _, g := range u.Status.Gates {
			if g.At.Time.Before(c.First) || g.At.Time.After(c.Last) {
				continue
			}
			x := c.Plot.X + c.Plot.W*float64(g.At.Time.Sub(c.First))/float64(span)
			c.Markers = append(c.Markers, marker{X: x, Passed: g.Passed,
				Title: fmt.Sprintf("wave %d gate %s: %s", g.Wave, g.Name, verdict(g.Passed))})
		}
	}

	below := make([]int, len(samples))
	for i, r := range revs {
		top := make([]int, len(samples))
		for j, s := range samples {
			top[j] = below[j] + max(s.Pods[r], 0)
		}
		var p string
		if span <= 0 {
			p = c.barPath(below[len(below)-1], top[len(top)-1], yMax)
		} else {
			p = c.areaPath(xs, below, top, yMax)
		}
		c.Series = append(c.Series, series{
			Revision: r,
			Color:    seriesColor(i),
			Path:     p,
			Latest:   samples[len(samples)-1].Pods[r],
		})
		below = top
	}
	return c
}

// y maps a pod count to the SVG y coordinate.
func (c chart) y(v, yMax int) float64 {
	return c.Plot.Y + c.Plot.H - c.Plot.H*float64(v)/float64(yMax)
}

// areaPath outlines the band between below and top: along the top edge left
// to right, then back along the bottom edge.
func (c chart) areaPath(xs []float64, below, top []int, yMax int) string {
	var b strings.Builder
	for i := range xs {
		cmd := 'L'
		if i == 0 {
			cmd = 'M'
		}
		fmt.Fprintf(&b, "%c%s %s ", cmd, num(xs[i]), num(c.y(top[i], yMax)))
	}
	for i := len(xs) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "L%s %s ", num(xs[i]), num(c.y(below[i], yMax)))
	}
	b.WriteString("Z")
	return b.String()
}

// barPath is the single-sample rendering of a band.
func (c chart) barPath(below, top, yMax int) string {
	x0 := c.Plot.X + (c.Plot.W-singleBarW)/2
	x1 := x0 + singleBarW
	y0, y1 := c.y(below, yMax), c.y(top, yMax)
	return fmt.Sprintf("M%s %s L%s %s L%s %s L%s %s Z", num(x0), num(y1), num(x1), num(y1), num(x1), num(y0), num(x0), num(y0))
}

// num prints a coordinate with at most one decimal, keeping the SVG small
// and the golden-free tests stable.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
}

// niceScale picks a y-axis maximum and step of 1, 2 or 5 times a power of
// ten so that there are at most five steps and the top tick is ≥ maxPods.
func niceScale(maxPods int) (top, step int) {
	if maxPods <= 0 {
		return 1, 1
	}
	for mag := 1; ; mag *= 10 {
		for _, m := range []int{1, 2, 5} {
			step = m * mag
			if (maxPods+step-1)/step <= 5 {
				return (maxPods + step - 1) / step * step, step
			}
		}
	}
}

// edgeLabel is how close (in SVG units) to a plot edge a time label must be
// to hang inwards instead of centring on its tick.
const edgeLabel = 40

// maxXTicks keeps time labels (about 60 units wide) from touching each other
// on the narrowest plot the page allows.
const maxXTicks = 7

// timeTicks places labels at round UTC times between first and last.
func timeTicks(first, last time.Time, p rect) []tick {
	// Tick intervals a reader finds natural.
	timeSteps := [...]time.Duration{
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	}
	span := last.Sub(first)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s < maxXTicks {
			step = s
			break
		}
	}
	layout := "15:04"
	if step < time.Minute {
		layout = "15:04:05"
	}
	if span > 24*time.Hour {
		layout = "Jan 2 15:04"
	}
	var ticks []tick
	for t := first.UTC().Truncate(step); !t.After(last); t = t.Add(step) {
		if t.Before(first) {
			continue
		}
		x := p.X + p.W*float64(t.Sub(first))/float64(span)
		anchor := "middle"
		switch {
		case x-p.X < edgeLabel:
			anchor = "start"
		case p.Right()-x < edgeLabel:
			anchor = "end"
		}
		ticks = append(ticks, tick{Pos: x, Label: t.Format(layout), Anchor: anchor})
	}
	return ticks
}

// Right is the x coordinate of the plot's right edge.
func (r rect) Right() float64 { return r.X + r.W }

// Bottom is the y coordinate of the plot's bottom edge (the time axis).
func (r rect) Bottom() float64 { return r.Y + r.H }
