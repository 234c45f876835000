package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// This file lays out the traffic series of a run: calls per second (errors
// in red on top) and p50/p99 latency per second, measured by a load probe
// for the whole run, with the run's wave and step boundaries marked so a
// reader sees which change a failure or a latency spike belongs to.

// Traffic is what a load probe measured during a run, one Second per second.
type Traffic struct {
	// Source says what made the calls ("probe http://shop/ at 20 calls/s").
	Source  string
	Seconds []Second
}

// Second is one second of calls: how many ended in it, how many failed, and
// the latency percentiles of those that ended.
type Second struct {
	At       time.Time
	Requests int
	Errors   int
	P50, P99 time.Duration
}

// Summary is the whole run's totals.
func (t *Traffic) Summary() (requests, errors, errorSeconds int, worstP99 time.Duration) {
	for _, s := range t.Seconds {
		requests += s.Requests
		errors += s.Errors
		if s.Errors > 0 {
			errorSeconds++
		}
		worstP99 = max(worstP99, s.P99)
	}
	return requests, errors, errorSeconds, worstP99
}

// Traffic chart canvas: two panels sharing the time axis.
const (
	trafficH     = 200
	trafficGap   = 28
	trafficPanel = trafficH - chartTop - trafficGap
)

// trafficChart is the geometry of both panels.
type trafficChart struct {
	W, H      int
	Calls     rect
	Latency   rect
	Bars      []callBar
	P50, P99  string
	CallTicks []tick
	LatTicks  []tick
	XTicks    []tick
	Bounds    []boundary
	Seconds   int
	Source    string
	Requests  int
	Errors    int
	ErrorSecs int
	WorstP99  time.Duration
}

// callBar is one second's calls: OK height then the errors above it.
type callBar struct {
	X, W       float64
	OKY, OKH   float64
	ErrY, ErrH float64
	Title      string
}

// boundary marks a wave or step of the run on both panels.
type boundary struct {
	X, LabelY float64
	Label     string
	Title     string
}

// newTrafficChart lays out t against u's history; nil t or no seconds give
// a chart with Seconds == 0 (the template then says no probe ran).
func newTrafficChart(u *v1alpha1.MeshUpgrade, t *Traffic) trafficChart {
	plotW := float64(chartW - chartLeft - chartRight)
	c := trafficChart{
		W: chartW, H: 2*trafficH + chartBottom - trafficGap,
		Calls:   rect{X: chartLeft, Y: chartTop, W: plotW, H: trafficPanel},
		Latency: rect{X: chartLeft, Y: trafficH + chartTop, W: plotW, H: trafficPanel},
	}
	if t == nil || len(t.Seconds) == 0 {
		return c
	}
	secs := slices.Clone(t.Seconds)
	slices.SortFunc(secs, func(a, b Second) int { return a.At.Compare(b.At) })
	c.Seconds, c.Source = len(secs), t.Source
	c.Requests, c.Errors, c.ErrorSecs, c.WorstP99 = t.Summary()
	first, last := secs[0].At, secs[len(secs)-1].At.Add(time.Second)
	span := last.Sub(first)
	x := func(at time.Time) float64 { return c.Calls.X + c.Calls.W*float64(at.Sub(first))/float64(span) }
	maxCalls := 0
	var maxLat time.Duration
	for _, s := range secs {
		maxCalls = max(maxCalls, s.Requests)
		maxLat = max(maxLat, s.P99, s.P50)
	}
	callTop, callStep := niceScale(maxCalls)
	for v := 0; v <= callTop; v += callStep {
		c.CallTicks = append(c.CallTicks, tick{Pos: yOf(c.Calls, float64(v), float64(callTop)), Label: strconv.Itoa(v)})
	}
	latTop, latStep := niceScale(int(maxLat.Milliseconds()) + 1)
	for v := 0; v <= latTop; v += latStep {
		c.LatTicks = append(c.LatTicks, tick{Pos: yOf(c.Latency, float64(v), float64(latTop)), Label: strconv.Itoa(v) + " ms"})
	}
	barW := max(c.Calls.W/float64(len(secs))*0.8, 0.5)
	var p50, p99 strings.Builder
	for i, s := range secs {
		x0 := x(s.At)
		ok := max(s.Requests-s.Errors, 0)
		okY := yOf(c.Calls, float64(ok), float64(callTop))
		errY := yOf(c.Calls, float64(ok+s.Errors), float64(callTop))
		c.Bars = append(c.Bars, callBar{X: x0, W: barW, OKY: okY, OKH: c.Calls.Bottom() - okY, ErrY: errY, ErrH: okY - errY,
			Title: fmt.Sprintf("%s: %d calls, %d failed, p50 %s, p99 %s", s.At.UTC().Format("15:04:05"), s.Requests, s.Errors, ms(s.P50), ms(s.P99))})
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		mid := x0 + barW/2
		fmt.Fprintf(&p50, "%s%s %s ", cmd, num(mid), num(yOf(c.Latency, float64(s.P50.Microseconds())/1000, float64(latTop))))
		fmt.Fprintf(&p99, "%s%s %s ", cmd, num(mid), num(yOf(c.Latency, float64(s.P99.Microseconds())/1000, float64(latTop))))
	}
	c.P50, c.P99 = strings.TrimSpace(p50.String()), strings.TrimSpace(p99.String())
	c.XTicks = timeTicks(first, last, c.Latency)
	if u != nil {
		for _, e := range u.Status.History {
			at := e.At.Time
			if at.Before(first) || at.After(last) || !boundaryEvent(e.Type) {
				continue
			}
			c.Bounds = append(c.Bounds, boundary{X: x(at), Label: boundaryLabel(e), Title: at.UTC().Format("15:04:05") + " " + e.Type + ": " + e.Message})
		}
	}
	c.stagger()
	return c
}

// labelRows and labelGap keep the labels of boundaries close in time from
// printing over each other: a label goes to the first row whose last label
// is far enough to its left.
const (
	labelRows = 4
	labelGap  = 56
)

func (c *trafficChart) stagger() {
	var last [labelRows]float64
	for i := range last {
		last[i] = -labelGap
	}
	for i := range c.Bounds {
		b := &c.Bounds[i]
		row := 0
		for row < labelRows-1 && b.X-last[row] < labelGap {
			row++
		}
		last[row] = b.X
		b.LabelY = c.Calls.Y + 10 + float64(row)*11
	}
}

// boundaryEvent says which history events start or end a part of the run:
// waves, revision steps (install, gateways, prune), tag and label moves,
// rollbacks. Per-workload and gate events would crowd the chart.
func boundaryEvent(typ string) bool {
	switch typ {
	case "wave", "step", "tag", "relabel", "rollback", "gateway":
		return true
	}
	return false
}

// boundaryLabel is the few characters printed at the top of a boundary.
func boundaryLabel(e v1alpha1.Event) string {
	switch e.Type {
	case "wave":
		return "w" + strconv.Itoa(e.Wave)
	case "step":
		name, _, _ := strings.Cut(e.Message, ":")
		return name
	}
	return e.Type
}

// yOf maps v in [0, top] into panel p, 0 at the bottom.
func yOf(p rect, v, top float64) float64 {
	if top <= 0 {
		return p.Bottom()
	}
	return p.Y + p.H - p.H*min(v, top)/top
}

// ms prints a latency in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}
