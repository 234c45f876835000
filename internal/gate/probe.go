package gate

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
	"fortio.org/log"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Probe defaults, used when the spec leaves a field at zero. They are low on
// purpose: the probe verifies the path works, it is not a benchmark, and it
// must not itself disturb the workloads being migrated.
const (
	DefaultProbeQPS         = 10
	DefaultProbeDuration    = 10 * time.Second
	DefaultProbeConnections = 2
)

// SocketErrorCode is the key Fortio uses in ProbeResult.Codes for requests
// that got no HTTP answer at all (connection refused, reset, timeout).
const SocketErrorCode = -1

// ProbeResult is what a load probe measured.
type ProbeResult struct {
	// URL is the probed URL.
	URL string `json:"url"`
	// Requests is how many requests completed (with an answer or a socket
	// error).
	Requests int64 `json:"requests"`
	// Codes counts answers per HTTP status; SocketErrorCode counts requests
	// without an answer.
	Codes map[int]int64 `json:"codes"`
	// ErrorPercent is the share of requests without a 2xx answer, 0..100.
	ErrorPercent float64 `json:"errorPercent"`
	// P50 and P99 are request latency percentiles.
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	// Elapsed is how long the probe actually ran.
	Elapsed time.Duration `json:"elapsed"`
}

// Judge turns a probe result into a Verdict: it fails when the non-2xx
// share exceeds maxErrorPercent ("" or "0": any non-2xx fails) or when no
// request completed, because a probe that measured nothing proves nothing.
func (r ProbeResult) Judge(name, maxErrorPercent string) (Verdict, error) {
	limit, err := parseMaxErrorPercent(maxErrorPercent)
	if err != nil {
		return Verdict{}, &InvalidError{Gate: name, Problems: []string{err.Error()}}
	}
	v := Verdict{Name: name, Values: map[string]float64{
		"requests":     float64(r.Requests),
		"errorPercent": r.ErrorPercent,
		"p50Seconds":   r.P50.Seconds(),
		"p99Seconds":   r.P99.Seconds(),
	}}
	for code, n := range r.Codes {
		v.Values["code/"+strconv.Itoa(code)] = float64(n)
	}
	if r.Requests == 0 {
		v.Evidence = fmt.Sprintf("GET %s: no request completed → fail", r.URL)
		return v, nil
	}
	v.Passed = r.ErrorPercent <= limit
	v.Evidence = fmt.Sprintf("GET %s: %d requests, codes %s, %s%% non-2xx (want <= %s%%), p50 %s p99 %s → %s",
		r.URL, r.Requests, formatCodes(r.Codes), formatValue(r.ErrorPercent), formatValue(limit),
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), outcome(v.Passed))
	return v, nil
}

// formatCodes prints "200:95 503:5" in code order; socket errors show as
// "conn-error".
func formatCodes(codes map[int]int64) string {
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		label := strconv.Itoa(k)
		if k == SocketErrorCode {
			label = "conn-error"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", label, codes[k]))
	}
	return strings.Join(parts, " ")
}

// Probe runs a load probe for g.Duration (DefaultProbeDuration when zero)
// and returns what it measured; judge it with ProbeResult.Judge. Cancelling
// ctx ends the probe early; the partial result is returned with ctx's error.
func Probe(ctx context.Context, g v1alpha1.ProbeGate) (ProbeResult, error) {
	d := g.Duration.Duration
	if d == 0 {
		d = DefaultProbeDuration
	}
	rp := startProbe(ctx, g, d)
	<-rp.done
	if rp.err == nil && ctx.Err() != nil {
		return rp.result, fmt.Errorf("failed to finish probe of %s: %w", g.URL, ctx.Err())
	}
	return rp.result, rp.err
}

// RunningProbe is a load probe running in the background for the length of
// an operation (a wave, a gateway flip), so a brief outage during the
// operation is caught even though no gate runs while it happens.
type RunningProbe struct {
	aborter *periodic.Aborter
	stop    context.CancelFunc
	done    chan struct{}
	result  ProbeResult
	err     error
}

// StartProbe starts probing g.URL until Stop is called or ctx is done;
// g.Duration is ignored because the operation decides the length. A
// cancelled ctx ends the probe like Stop does; Stop still returns what was
// measured until then.
func StartProbe(ctx context.Context, g v1alpha1.ProbeGate) *RunningProbe {
	return startProbe(ctx, g, -1)
}

// Stop ends the probe, waits for it and returns what it measured. It is
// safe to call more than once; later calls return the same result.
func (p *RunningProbe) Stop() (ProbeResult, error) {
	p.stop()
	<-p.done
	return p.result, p.err
}

// startProbe runs Fortio in a goroutine. A negative duration runs until
// stopped, which is Fortio's own convention.
func startProbe(ctx context.Context, g v1alpha1.ProbeGate, d time.Duration) *RunningProbe {
	quietFortio()
	ctx, cancel := context.WithCancel(ctx)
	p := &RunningProbe{aborter: periodic.NewAborter(), stop: cancel, done: make(chan struct{})}
	opts := runnerOptions(g, d, p.aborter)
	finished := make(chan struct{})
	go func() {
		// Fortio has no context; its Aborter is how a run is cut short.
		select {
		case <-ctx.Done():
			p.aborter.Abort(false)
		case <-finished:
		}
	}()
	go func() {
		defer close(p.done)
		defer cancel()
		defer close(finished)
		start := time.Now()
		res, err := fhttp.RunHTTPTest(opts)
		if err != nil {
			p.err = fmt.Errorf("failed to probe %s: %w", g.URL, err)
			return
		}
		p.result = toResult(g.URL, res, time.Since(start))
	}()
	return p
}

// runnerOptions maps a ProbeGate onto Fortio's options.
func runnerOptions(g v1alpha1.ProbeGate, d time.Duration, aborter *periodic.Aborter) *fhttp.HTTPRunnerOptions {
	qps, conns := g.QPS, g.Connections
	if qps == 0 {
		qps = DefaultProbeQPS
	}
	if conns == 0 {
		conns = DefaultProbeConnections
	}
	o := &fhttp.HTTPRunnerOptions{
		RunnerOptions: periodic.RunnerOptions{
			QPS:         float64(qps),
			Duration:    d,
			NumThreads:  conns,
			Percentiles: []float64{50, 99},
			Out:         io.Discard,
			Stop:        aborter,
		},
		// An error answer during warm-up is a measurement like any other;
		// without this Fortio would abort and the probe would report nothing.
		AllowInitialErrors: true,
	}
	o.URL = g.URL
	return o
}

// toResult reduces Fortio's results to what a gate needs.
func toResult(url string, res *fhttp.HTTPRunnerResults, elapsed time.Duration) ProbeResult {
	r := ProbeResult{URL: url, Codes: make(map[int]int64, len(res.RetCodes)), Elapsed: elapsed}
	var bad int64
	for code, n := range res.RetCodes {
		r.Codes[code] = n
		r.Requests += n
		if code < 200 || code > 299 {
			bad += n
		}
	}
	if r.Requests > 0 {
		r.ErrorPercent = 100 * float64(bad) / float64(r.Requests)
	}
	if h := res.DurationHistogram; h != nil {
		for _, pc := range h.Percentiles {
			d := time.Duration(pc.Value * float64(time.Second))
			switch pc.Percentile {
			case 50:
				r.P50 = d
			case 99:
				r.P99 = d
			}
		}
	}
	return r
}

// quietFortio raises Fortio's log level to Critical: Fortio logs every
// refused connection at Error level, while the probe already counts them in
// ProbeResult.Codes, and a probe against a failing backend would otherwise
// flood the operator's terminal. Fortio logs through a process-wide logger
// with no per-run setting, so this is necessarily global; it only ever
// raises the level and is idempotent, so concurrent probes and tests cannot
// observe each other's setting.
func quietFortio() {
	if log.GetLogLevel() < log.Critical {
		log.SetLogLevelQuiet(log.Critical)
	}
}
