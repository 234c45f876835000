package gate

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchSeries: a probe over a server that answers 503 for a while
// records those failures in the seconds they happened, and the calls of
// every second with their latency; Stop returns every call made.
func TestWatchSeries(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		time.Sleep(time.Millisecond)
	}))
	defer srv.Close()

	w := StartWatch(t.Context(), srv.URL, 50, time.Second)
	time.Sleep(1200 * time.Millisecond)
	failing.Store(true)
	failAt := time.Now()
	time.Sleep(500 * time.Millisecond)
	failing.Store(false)
	healAt := time.Now()
	time.Sleep(1200 * time.Millisecond)
	tr := w.Stop()

	if len(tr.Seconds) < 3 {
		t.Fatalf("series has %d seconds over 2.9 s; want ≥ 3", len(tr.Seconds))
	}
	requests, errors, _, _ := tr.Summary()
	if requests < 100 || requests > 160 {
		t.Errorf("%d calls in 2.9 s at 50/s; want about 145", requests)
	}
	if errors < 10 || errors > 35 {
		t.Errorf("%d failed calls in a 0.5 s outage at 50/s; want about 25", errors)
	}
	for _, s := range tr.Seconds {
		inOutage := !s.At.Add(time.Second).Before(failAt) && !s.At.After(healAt)
		if s.Errors > 0 && !inOutage {
			t.Errorf("second %s has %d failures outside the outage (%s–%s)", s.At.Format("15:04:05"), s.Errors, failAt.Format("15:04:05.000"), healAt.Format("15:04:05.000"))
		}
		if s.Requests > 0 && (s.P50 <= 0 || s.P99 < s.P50) {
			t.Errorf("second %s: p50 %s p99 %s", s.At.Format("15:04:05"), s.P50, s.P99)
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{0.5: 5, 0.99: 10, 0.1: 1} {
		if got := percentile(lat, q); got != want {
			t.Errorf("percentile(%v) = %d; want %d", q, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}
