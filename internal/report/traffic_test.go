package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// trafficRun is a 3-minute probe over a run whose engine history has two
// waves, a tag move and the prune step; seconds 70–72 lost calls.
func trafficRun() (*v1alpha1.MeshUpgrade, *Traffic) {
	u := succeededRun()
	u.Status.History = []v1alpha1.Event{
		{At: at(10 * time.Second), Type: "step", Message: "install: Done (istiod-1-24-2 ready)"},
		{At: at(30 * time.Second), Type: "wave", Wave: 1, Message: "wave 1 of 2 started"},
		{At: at(60 * time.Second), Type: "gate", Wave: 1, Message: "probe passed"},
		{At: at(65 * time.Second), Type: "wave", Wave: 2, Message: "wave 2 of 2 started"},
		{At: at(120 * time.Second), Type: "tag", Message: "tag default: 1-23-2 → 1-24-2"},
		{At: at(150 * time.Second), Type: "step", Message: "prune: Done (1-23-2 removed)"},
		{At: at(10 * time.Minute), Type: "step", Message: "after the probe: not drawn"},
	}
	tr := &Traffic{Source: "probe http://shop/ at 20 calls/s"}
	for i := range 180 {
		s := Second{At: fixtureStart().Add(time.Duration(i) * time.Second), Requests: 20, P50: 2 * time.Millisecond, P99: 9 * time.Millisecond}
		if i >= 70 && i <= 72 {
			s.Errors, s.P99 = 4, 250*time.Millisecond
		}
		tr.Seconds = append(tr.Seconds, s)
	}
	return u, tr
}

// TestHTMLTraffic: with a probe's series the report draws one bar per
// second, the failed calls in red only where they happened, both latency
// lines, and a boundary per wave/step/tag event inside the probe's time
// (not per gate or per workload); the totals name the failures.
func TestHTMLTraffic(t *testing.T) {
	u, tr := trafficRun()
	var buf bytes.Buffer
	if err := HTMLWithTraffic(&buf, u, tr, fixtureStart().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	checkBalanced(t, doc)
	sec := doc[strings.Index(doc, `id="traffic"`):]
	sec = sec[:strings.Index(sec, "</section>")]
	for pattern, want := range map[string]int{
		`<g class="second">`:        180,
		`class="errors"`:            3,
		`class="p50"`:               1,
		`class="p99"`:               1,
		`class="boundary"`:          5,
		"3600 calls":                1,
		"12 failed</span> in 3 sec": 1,
		"worst p99 250.0 ms":        1,
		">w2</text>":                1,
		">prune</text>":             1,
	} {
		if got := strings.Count(sec, pattern); got != want {
			t.Errorf("traffic section has %d × %q, want %d", got, pattern, want)
		}
	}
	if !strings.Contains(sec, "10:01:10: 20 calls, 4 failed, p50 2.0 ms, p99 250.0 ms") {
		t.Errorf("the failing second's tooltip is missing:\n%.2000s", sec)
	}

	// No probe: no section at all; a probe that recorded nothing says so.
	if plain := renderHTML(t, u); strings.Contains(plain, `id="traffic"`) {
		t.Error("report without a probe has a traffic section")
	}
	buf.Reset()
	if err := HTMLWithTraffic(&buf, u, &Traffic{Source: "probe"}, fixtureStart()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "A probe ran but recorded no call.") {
		t.Error("an empty probe series is not reported as such")
	}
}

// TestTrafficBoundaryLabelsDoNotOverlap: boundaries a second apart (the
// install and gateway steps of a fast run) print their labels on different
// rows; far apart ones share the top row.
func TestTrafficBoundaryLabelsDoNotOverlap(t *testing.T) {
	u, tr := trafficRun()
	u.Status.History = []v1alpha1.Event{
		{At: at(20 * time.Second), Type: "step", Message: "install: Done"},
		{At: at(21 * time.Second), Type: "step", Message: "gateways: Done"},
		{At: at(22 * time.Second), Type: "wave", Wave: 1},
		{At: at(120 * time.Second), Type: "tag", Message: "tag default"},
	}
	c := newTrafficChart(u, tr)
	if len(c.Bounds) != 4 {
		t.Fatalf("%d boundaries, want 4", len(c.Bounds))
	}
	ys := []float64{c.Bounds[0].LabelY, c.Bounds[1].LabelY, c.Bounds[2].LabelY, c.Bounds[3].LabelY}
	if ys[0] == ys[1] || ys[1] == ys[2] || ys[0] == ys[2] || ys[3] != ys[0] {
		t.Errorf("label rows %v: want the first three apart and the last back on the top row", ys)
	}
}
