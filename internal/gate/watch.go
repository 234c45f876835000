package gate

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/meshroll/meshroll/internal/report"
)

// DefaultWatchQPS is the rate of the probe that runs for a whole upgrade:
// enough to see a second with failures, low enough not to load the
// workloads being migrated.
const DefaultWatchQPS = 20

// Watch calls a URL at a steady rate for as long as a run lasts and keeps,
// per second, how many calls were sent, how many failed (no answer or not
// 2xx) and their latencies: the series the report draws. The probe gate
// (Probe) judges a few seconds after each wave; Watch shows what happened
// in between.
type Watch struct {
	url    string
	qps    int
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	secs map[int64]*watchSecond
}

type watchSecond struct {
	errors int
	lat    []time.Duration
}

// StartWatch starts calling url qps times a second (open loop: a slow
// answer does not delay the next call), each call bounded by timeout, until
// Stop or ctx ends.
func StartWatch(ctx context.Context, url string, qps int, timeout time.Duration) *Watch {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watch{url: url, qps: qps, cancel: cancel, done: make(chan struct{}), secs: map[int64]*watchSecond{}}
	client := &http.Client{Timeout: timeout}
	go func() {
		defer close(w.done)
		var calls sync.WaitGroup
		defer calls.Wait()
		tick := time.NewTicker(time.Second / time.Duration(max(qps, 1)))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case sent := <-tick.C:
				calls.Add(1)
				go func() {
					defer calls.Done()
					w.call(ctx, client, sent)
				}()
			}
		}
	}()
	return w
}

// call makes one call and records it under the second it was sent in.
func (w *Watch) call(ctx context.Context, client *http.Client, sent time.Time) {
	failed := true
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err == nil {
		resp, err := client.Do(req)
		if err == nil {
			failed = resp.StatusCode < 200 || resp.StatusCode > 299
			resp.Body.Close()
		}
	}
	if ctx.Err() != nil {
		return // cut by Stop: not a failure of the path
	}
	took := time.Since(sent)
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.secs[sent.Unix()]
	if s == nil {
		s = &watchSecond{}
		w.secs[sent.Unix()] = s
	}
	s.lat = append(s.lat, took)
	if failed {
		s.errors++
	}
}

// Stop ends the calls and returns the series, oldest second first.
func (w *Watch) Stop() *report.Traffic {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t := &report.Traffic{Source: fmt.Sprintf("probe %s at %d calls/s", w.url, w.qps)}
	for _, at := range slices.Sorted(maps.Keys(w.secs)) {
		s := w.secs[at]
		slices.Sort(s.lat)
		t.Seconds = append(t.Seconds, report.Second{At: time.Unix(at, 0), Requests: len(s.lat), Errors: s.errors,
			P50: percentile(s.lat, 0.50), P99: percentile(s.lat, 0.99)})
	}
	return t
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
