package report

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// withSamples is the succeeded fixture with its samples replaced.
func withSamples(ss ...v1alpha1.Sample) *v1alpha1.MeshUpgrade {
	u := succeededRun()
	u.Status.Samples = ss
	return u
}

// sample is a Sample d after the fixture start.
func sample(d time.Duration, pods map[string]int) v1alpha1.Sample {
	return v1alpha1.Sample{At: at(d), Pods: pods}
}

// pathPoints parses the coordinates of an M/L/Z path.
func pathPoints(t *testing.T, d string) [][2]float64 {
	t.Helper()
	var pts [][2]float64
	fields := strings.Fields(strings.NewReplacer("M", " ", "L", " ", "Z", " ").Replace(d))
	if len(fields)%2 != 0 {
		t.Fatalf("odd number of coordinates in %q", d)
	}
	for i := 0; i < len(fields); i += 2 {
		x, err1 := strconv.ParseFloat(fields[i], 64)
		y, err2 := strconv.ParseFloat(fields[i+1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad coordinate in %q", d)
		}
		pts = append(pts, [2]float64{x, y})
	}
	return pts
}

// TestChart checks series, axes and geometry for sample sets from none to
// many, including revisions missing from some samples.
func TestChart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		u         *v1alpha1.MeshUpgrade
		revisions []string
		maxPods   int
		yTop      string
		xTicks    int // minimum
	}{
		{name: "none", u: withSamples()},
		{name: "one", u: withSamples(sample(0, map[string]int{"1-24-2": 3, "1-23-2": 7})),
			revisions: []string{"1-23-2", "1-24-2"}, maxPods: 10, yTop: "10", xTicks: 1},
		{name: "same instant", u: withSamples(sample(0, map[string]int{"1-23-2": 4}), sample(0, map[string]int{"1-23-2": 5})),
			revisions: []string{"1-23-2"}, maxPods: 5, yTop: "5", xTicks: 1},
		{name: "revision appears later", u: withSamples(
			sample(0, map[string]int{"1-23-2": 10}),
			sample(time.Minute, map[string]int{"1-23-2": 6, "1-24-2": 4}),
			sample(3*time.Minute, map[string]int{"1-24-2": 10, "canary": 1})),
			revisions: []string{"1-23-2", "1-24-2", "canary"}, maxPods: 11, yTop: "15", xTicks: 2},
		{name: "succeeded fixture", u: succeededRun(),
			revisions: []string{"1-23-2", "1-24-2", "1-22-1"}, maxPods: 143, yTop: "150", xTicks: 3},
		{name: "two days", u: withSamples(sample(0, map[string]int{"a": 1}), sample(50*time.Hour, map[string]int{"a": 1000})),
			revisions: []string{"a"}, maxPods: 1000, yTop: "1000", xTicks: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChart(tc.u)
			var revs []string
			for _, s := range c.Series {
				revs = append(revs, s.Revision)
				for _, p := range pathPoints(t, s.Path) {
					if p[0] < c.Plot.X || p[0] > c.Plot.Right() || p[1] < c.Plot.Y || p[1] > c.Plot.Bottom() {
						t.Errorf("series %s point %v outside the plot %+v", s.Revision, p, c.Plot)
					}
				}
			}
			if diff := cmp.Diff(tc.revisions, revs); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
			if c.MaxPods != tc.maxPods {
				t.Errorf("MaxPods = %d, want %d", c.MaxPods, tc.maxPods)
			}
			if len(tc.revisions) == 0 {
				if c.Samples != 0 || len(c.XTicks)+len(c.YTicks) != 0 {
					t.Errorf("empty chart has samples or ticks: %+v", c)
				}
				return
			}
			if got := c.YTicks[len(c.YTicks)-1].Label; got != tc.yTop {
				t.Errorf("top y tick = %s, want %s", got, tc.yTop)
			}
			if len(c.XTicks) < tc.xTicks || len(c.XTicks) > maxXTicks {
				t.Errorf("%d x ticks, want %d..%d", len(c.XTicks), tc.xTicks, maxXTicks)
			}
			for i := 1; i < len(c.XTicks); i++ {
				if gap := c.XTicks[i].Pos - c.XTicks[i-1].Pos; gap < 90 {
					t.Errorf("x labels %q and %q only %.0f units apart; they would overlap", c.XTicks[i-1].Label, c.XTicks[i].Label, gap)
				}
			}
			for _, tk := range c.XTicks {
				if tk.Pos < c.Plot.X || tk.Pos > c.Plot.Right() {
					t.Errorf("x tick %q at %.1f off the plot", tk.Label, tk.Pos)
				}
			}
		})
	}
}

// TestChartColours checks From and To keep their colours whatever other
// revisions appear, so readers can compare reports.
func TestChartColours(t *testing.T) {
	c := newChart(withSamples(sample(0, map[string]int{"0-old": 1, "1-24-2": 2, "1-23-2": 3, "zz": 4})))
	got := map[string]string{}
	for _, s := range c.Series {
		got[s.Revision] = s.Color
	}
	want := map[string]string{"1-23-2": seriesColor(0), "1-24-2": seriesColor(1), "0-old": seriesColor(2), "zz": seriesColor(3)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("colours (-want +got):\n%s", diff)
	}
}

// TestNiceScale checks y axes end on a round number at or above the data
// with at most five steps.
func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ in, top, step int }{
		{0, 1, 1}, {1, 1, 1}, {5, 5, 1}, {6, 6, 2}, {11, 15, 5}, {143, 150, 50}, {1000, 1000, 200}, {1001, 1500, 500},
	} {
		top, step := niceScale(tc.in)
		if top != tc.top || step != tc.step {
			t.Errorf("niceScale(%d) = %d, %d; want %d, %d", tc.in, top, step, tc.top, tc.step)
		}
	}
}

// TestTimeTicks checks label formats and edge anchoring.
func TestTimeTicks(t *testing.T) {
	p := rect{X: 0, W: 900}
	base := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		span   time.Duration
		labels []string
		first  string // anchor of the first label
	}{
		{"seconds", 25 * time.Second, []string{"10:00:00", "10:00:05", "10:00:10", "10:00:15", "10:00:20", "10:00:25"}, "start"},
		{"minutes", 30 * time.Minute, []string{"10:00", "10:05", "10:10", "10:15", "10:20", "10:25", "10:30"}, "start"},
		{"hours", 5 * time.Hour, []string{"10:00", "11:00", "12:00", "13:00", "14:00", "15:00"}, "start"},
		{"days", 72 * time.Hour, []string{"Mar 4 12:00", "Mar 5 00:00", "Mar 5 12:00", "Mar 6 00:00", "Mar 6 12:00", "Mar 7 00:00"}, "start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ticks := timeTicks(base, base.Add(tc.span), p)
			var labels []string
			for _, tk := range ticks {
				labels = append(labels, tk.Label)
			}
			if diff := cmp.Diff(tc.labels, labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if len(ticks) > 0 && ticks[0].Anchor != tc.first {
				t.Errorf("first anchor = %s, want %s", ticks[0].Anchor, tc.first)
			}
		})
	}
}

// TestChartGateMarkers checks gate verdicts inside the sampled time range
// become markers and the others are dropped.
func TestChartGateMarkers(t *testing.T) {
	u := rolledBackRun()
	u.Status.Gates = append(u.Status.Gates, v1alpha1.GateResult{Wave: 9, Name: "late", At: metav1.NewTime(fixtureStart().Add(24 * time.Hour))})
	c := newChart(u)
	var passed []bool
	for _, m := range c.Markers {
		passed = append(passed, m.Passed)
	}
	if diff := cmp.Diff([]bool{true, true, false}, passed); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
}
