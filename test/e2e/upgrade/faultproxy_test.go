package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// faultProxy is a plain-HTTP reverse proxy on 127.0.0.1 in front of the
// sandbox's API server that injects the faults a busy real API server and
// its network produce: 500s, 429s with and without Retry-After, 409s on
// status writes, stalls (before the request reaches the server, or after it
// did, with the answer lost to the client's timeout), watches cut, and
// "storms" in which every request fails. Clients built from config() reach
// the cluster only through it. Rules inject one fault at a chosen request,
// for the tests of single sub-cases.
type faultProxy struct {
	srv    *httptest.Server
	target *url.URL
	rt     http.RoundTripper
	stream *httputil.ReverseProxy

	mix   faultMix
	mu    sync.Mutex
	rng   *rand.Rand
	rules []*faultRule
	// counts are per fault kind; forwarded per "VERB resource" that
	// reached the server (writes only: what the run really wrote).
	counts    map[string]int
	forwarded map[string]int

	storm    atomic.Bool
	requests atomic.Int64
}

// faultMix is the share of requests given each fault, for the random mix.
type faultMix struct {
	Err500, TooMany, TooManyRetryAfter, Stall float64
	// Conflict is the share of MeshUpgrade status writes answered 409.
	Conflict float64
	// StallAfterForward is the share of stalls that happen once the request
	// reached the server (the write lands, its answer is late or lost).
	StallAfterForward  float64
	StallMin, StallMax time.Duration
	// WatchCutMin/Max bound how long a watch streams before it is cut
	// (0: never).
	WatchCutMin, WatchCutMax time.Duration
}

// faultRule injects Fault into the next Times requests Match accepts
// (Times < 0: every one); After, when set, runs once the request was
// forwarded (Fault "" or "drop" only).
type faultRule struct {
	Match func(r *http.Request) bool
	Fault string // "500", "503", "429", "429-retry-after", "409", "drop" (forward, then cut the answer)
	Times int
	After func()
	hits  atomic.Int64
}

func startFaultProxy(t *testing.T, mix faultMix, seed uint64) *faultProxy {
	t.Helper()
	cfg := sandboxtest.Config(t)
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: target, rt: rt, mix: mix, rng: rand.New(rand.NewPCG(seed, 9)),
		counts: map[string]int{}, forwarded: map[string]int{}}
	p.stream = &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport:     rt,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // cut watches are the point
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// config is a client config that reaches the cluster through the proxy.
func (p *faultProxy) config() *rest.Config {
	return &rest.Config{Host: p.srv.URL, QPS: 200, Burst: 400}
}

func (p *faultProxy) addRule(r *faultRule) *faultRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r
}

func (p *faultProxy) count(kind string) {
	p.mu.Lock()
	p.counts[kind]++
	p.mu.Unlock()
}

// roll returns a uniform number in [0,1).
func (p *faultProxy) roll() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

func (p *faultProxy) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return lo + time.Duration(p.rng.Int64N(int64(hi-lo)))
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	watch := r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1"
	if p.storm.Load() {
		p.count("storm 503")
		fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "injected: storm", 0)
		return
	}
	if rule := p.match(r); rule != nil {
		p.count("rule " + rule.Fault)
		if rule.Fault == "drop" || rule.Fault == "" {
			p.forward(w, r, rule.Fault == "drop", 0)
			if rule.After != nil {
				rule.After()
			}
			return
		}
		p.inject(w, rule.Fault)
		return
	}
	if watch {
		p.watch(w, r)
		return
	}
	m := p.mix
	if statusWrite(r) && p.roll() < m.Conflict {
		p.inject(w, "409")
		return
	}
	x := p.roll()
	switch {
	case x < m.Err500:
		p.inject(w, "500")
	case x < m.Err500+m.TooMany:
		p.inject(w, "429")
	case x < m.Err500+m.TooMany+m.TooManyRetryAfter:
		p.inject(w, "429-retry-after")
	case x < m.Err500+m.TooMany+m.TooManyRetryAfter+m.Stall:
		d := p.between(m.StallMin, m.StallMax)
		if p.roll() < m.StallAfterForward {
			p.count("stall after forward")
			p.forward(w, r, false, d)
			return
		}
		p.count("stall before forward")
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return // the client gave up; the request never reached the server
		}
		p.forward(w, r, false, 0)
	default:
		p.forward(w, r, false, 0)
	}
}

func (p *faultProxy) match(r *http.Request) *faultRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rule := range p.rules {
		if rule.Times != 0 && rule.Match(r) {
			if rule.Times > 0 {
				rule.Times--
			}
			rule.hits.Add(1)
			return rule
		}
	}
	return nil
}

func (p *faultProxy) inject(w http.ResponseWriter, fault string) {
	p.count(fault)
	switch fault {
	case "500":
		fail(w, http.StatusInternalServerError, "InternalError", "injected: internal error", 0)
	case "503":
		fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "injected: unavailable", 0)
	case "429":
		fail(w, http.StatusTooManyRequests, "TooManyRequests", "injected: too many requests", 0)
	case "429-retry-after":
		fail(w, http.StatusTooManyRequests, "TooManyRequests", "injected: too many requests", 1)
	case "409":
		fail(w, http.StatusConflict, "Conflict", "injected: the object has been modified; please apply your changes to the latest version and try again", 0)
	default:
		panic("unknown fault " + fault)
	}
}

// fail answers a metav1.Status as the API server would.
func fail(w http.ResponseWriter, code int, reason, msg string, retryAfter int) {
	st := map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "reason": reason, "code": code}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
		st["details"] = map[string]any{"retryAfterSeconds": retryAfter}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

// forward sends r to the API server and copies the answer back. With delay
// the answer is held back after the server acted on the request (the client
// may give up meanwhile); with drop the connection is cut instead of
// answering. The request reaches the server even when the client went away.
func (p *faultProxy) forward(w http.ResponseWriter, r *http.Request, drop bool, delay time.Duration) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	out := r.Clone(context.WithoutCancel(r.Context()))
	out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = p.target.Scheme, p.target.Host, p.target.Host, ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	res, err := p.rt.RoundTrip(out)
	if err != nil {
		fail(w, http.StatusBadGateway, "InternalError", "proxy: "+err.Error(), 0)
		return
	}
	defer res.Body.Close()
	resBody, err := io.ReadAll(res.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if r.Method != http.MethodGet && res.StatusCode < 300 {
		p.mu.Lock()
		p.forwarded[r.Method+" "+apiResource(r.URL.Path)]++
		p.mu.Unlock()
	}
	if drop {
		panic(http.ErrAbortHandler) // the write landed; its answer is lost
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, vs := range res.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(resBody)
}

// watch streams a watch and, with WatchCutMax set, cuts it after a random
// time: half the cuts end the stream cleanly, half abort the connection.
func (p *faultProxy) watch(w http.ResponseWriter, r *http.Request) {
	if p.mix.WatchCutMax <= 0 {
		p.stream.ServeHTTP(w, r)
		return
	}
	after := p.between(p.mix.WatchCutMin, p.mix.WatchCutMax)
	abort := p.roll() < 0.5
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cut := time.AfterFunc(after, cancel)
	defer cut.Stop()
	if abort {
		p.count("watch cut (connection reset)")
	} else {
		p.count("watch cut (stream ended)")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }() // the ReverseProxy aborts on a cut copy
		p.stream.ServeHTTP(w, r.WithContext(ctx))
	}()
	<-done
	if abort && r.Context().Err() == nil {
		panic(http.ErrAbortHandler)
	}
}

// statusWrite is a write to a MeshUpgrade's status.
func statusWrite(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/status") && strings.Contains(r.URL.Path, "/meshupgrades/")
}

// apiResource names the resource (and subresource) of an API path:
// /apis/apps/v1/namespaces/x/deployments/y → "deployments",
// /api/v1/namespaces/x → "namespaces", .../meshupgrades/u/status →
// "meshupgrades/status".
func apiResource(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return path
	case 3:
		return parts[0] + "/" + parts[2]
	}
	return parts[0]
}

// isPatch matches a PATCH of one named object of resource (e.g.
// "deployments", "namespaces") whose name is name ("" any).
func isPatch(resourceName, name string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		n := len(parts)
		return n >= 2 && parts[n-2] == resourceName && (name == "" || parts[n-1] == name)
	}
}

// summary renders the counters, sorted.
func (p *faultProxy) summary() (faults, writes string, injected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	render := func(m map[string]int) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
		return strings.Join(parts, " ")
	}
	for k, v := range p.counts {
		if !strings.HasPrefix(k, "watch cut") {
			injected += v
		}
	}
	return render(p.counts), render(p.forwarded), injected
}

// forwardedWrites is how many writes of resource reached the server.
func (p *faultProxy) forwardedWrites(verbResource ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.forwarded {
		if slices.Contains(verbResource, k) {
			n += v
		}
	}
	return n
}
