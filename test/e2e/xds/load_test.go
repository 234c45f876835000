//go:build linux

package xds_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runreport "github.com/meshroll/meshroll/internal/report"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// second is one client's line of its stats file (test/xdsapp's Second).
type second struct {
	T        int64          `json:"t"`
	Pod      string         `json:"pod"`
	OK       int            `json:"ok"`
	Fail     int            `json:"fail"`
	Codes    map[string]int `json:"codes"`
	Versions map[string]int `json:"versions"`
	Lat      map[int]int    `json:"lat"`
}

// add merges o into s.
func (s *second) add(o second) {
	s.OK += o.OK
	s.Fail += o.Fail
	for _, m := range []struct{ dst, src map[string]int }{{s.Codes, o.Codes}, {s.Versions, o.Versions}} {
		for k, v := range m.src {
			m.dst[k] += v
		}
	}
	for k, v := range o.Lat {
		s.Lat[k] += v
	}
}

func newSecond(t int64) *second {
	return &second{T: t, Codes: map[string]int{}, Versions: map[string]int{}, Lat: map[int]int{}}
}

// load is every client's calls, merged per second.
type load struct {
	seconds map[int64]*second
}

// readLoad reads every client's stats file in dir.
func readLoad(t *testing.T, dir string) load {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no client stats in %s (%v)", dir, err)
	}
	l := load{seconds: map[int64]*second{}}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var s second
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if l.seconds[s.T] == nil {
				l.seconds[s.T] = newSecond(s.T)
			}
			l.seconds[s.T].add(s)
		}
		fh.Close()
	}
	return l
}

// window merges the seconds in [from, to).
func (l load) window(from, to time.Time) (*second, int) {
	sum, n := newSecond(0), 0
	for t, s := range l.seconds {
		if t >= from.Unix() && t < to.Unix() {
			sum.add(*s)
			n++
		}
	}
	return sum, n
}

// quantile is the q-quantile of a latency histogram (the upper edge of its
// bucket), 0 when it is empty.
func quantile(hist map[int]int, q float64) time.Duration {
	total := 0
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(total)))
	seen := 0
	for _, b := range slices.Sorted(maps.Keys(hist)) {
		seen += hist[b]
		if seen >= rank {
			return time.Duration(math.Pow(1.05, float64(b+1))) * time.Microsecond
		}
	}
	return 0
}

// phase is a named span of a run.
type phase struct {
	name     string
	from, to time.Time
}

// summary is what a phase's calls got.
type summary struct {
	name           string
	seconds        int
	ok, fail       int
	rate, minRate  float64
	p50, p99, p999 time.Duration
	codes          map[string]int
	versions       map[string]int
}

func (l load) summarize(p phase) summary {
	sum, n := l.window(p.from, p.to)
	s := summary{name: p.name, seconds: n, ok: sum.OK, fail: sum.Fail, codes: sum.Codes, versions: sum.Versions,
		p50: quantile(sum.Lat, 0.5), p99: quantile(sum.Lat, 0.99), p999: quantile(sum.Lat, 0.999), minRate: math.Inf(1)}
	if n > 0 {
		s.rate = float64(sum.OK+sum.Fail) / float64(n)
	}
	for t, sec := range l.seconds {
		if t >= p.from.Unix() && t < p.to.Unix() {
			s.minRate = min(s.minRate, float64(sec.OK+sec.Fail))
		}
	}
	return s
}

func (s summary) String() string {
	return fmt.Sprintf("%-7s %4ds  calls %7d  failed %5d  %6.0f/s (min %4.0f/s)  p50 %-8s p99 %-8s p99.9 %-8s codes %v versions %v",
		s.name, s.seconds, s.ok+s.fail, s.fail, s.rate, s.minRate, s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond),
		s.p999.Round(100*time.Microsecond), s.codes, s.versions)
}

// series is the per-second table: calls, failures, p99 and the versions
// that answered, relative to start, each line marked with its phase.
func (l load) series(start time.Time, phases []phase) string {
	var b strings.Builder
	b.WriteString("  second  calls  failed   p99      phase    answered by\n")
	for _, t := range slices.Sorted(maps.Keys(l.seconds)) {
		s := l.seconds[t]
		name := ""
		for _, p := range phases {
			if t >= p.from.Unix() && t < p.to.Unix() {
				name = p.name
			}
		}
		fmt.Fprintf(&b, "  %+5ds  %5d  %6d   %-8s %-8s %v\n", t-start.Unix(), s.OK+s.Fail, s.Fail,
			quantile(s.Lat, 0.99).Round(100*time.Microsecond), name, s.Versions)
	}
	return b.String()
}

// logClientFailures logs what the failed calls of ns's clients said (each
// client logs its first 20), so that a failure names its cause: the
// client library's message tells a cut connection from a missing cluster.
func logClientFailures(t *testing.T, ns string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(sandboxtest.Dir(t), "logs", "podproc", ns+".*.log"))
	var lines []string
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "call failed") {
				lines = append(lines, filepath.Base(f)+": "+l)
			}
		}
	}
	if len(lines) > 0 {
		t.Logf("failed calls as the clients saw them (%d lines):\n%s", len(lines), strings.Join(lines[:min(len(lines), 30)], "\n"))
	}
}

// traffic is the load as the run report draws it: every client's calls
// merged per second.
func (l load) traffic(source string) *runreport.Traffic {
	t := &runreport.Traffic{Source: source}
	for _, at := range slices.Sorted(maps.Keys(l.seconds)) {
		s := l.seconds[at]
		t.Seconds = append(t.Seconds, runreport.Second{At: time.Unix(at, 0), Requests: s.OK + s.Fail, Errors: s.Fail,
			P50: quantile(s.Lat, 0.5), P99: quantile(s.Lat, 0.99)})
	}
	return t
}
