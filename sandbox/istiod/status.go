package istiod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Instance is one pilot-discovery as GET /istiods reports it.
type Instance struct {
	// Pod is namespace/name of the pod it serves.
	Pod string `json:"pod"`
	// IP is the pod's address, which every listener is bound to.
	IP string `json:"ip"`
	// Version is the Istio release it was built from.
	Version string `json:"version"`
	// PID is its process id.
	PID int `json:"pid"`
	// Started is when it was started.
	Started time.Time `json:"started"`
	// Restarts counts restarts after deaths, for the pod.
	Restarts int `json:"restarts"`
	// Ready is its own readiness (GET <ip>:8080/ready), not kwok's.
	Ready bool `json:"ready"`
	// Log is the file its output goes to.
	Log string `json:"log"`
}

// readyTimeout bounds one readiness probe of an istiod.
const readyTimeout = time.Second

// Instances reports the running processes, sorted by pod, probing each
// one's readiness.
func (r *Runner) Instances(ctx context.Context) []Instance {
	r.mu.Lock()
	var out []Instance
	for key, in := range r.procs {
		if in.Exited() {
			continue
		}
		out = append(out, Instance{
			Pod: key, IP: in.spec.ip.String(), Version: in.spec.version, PID: in.Pid(),
			Started: in.Started, Restarts: r.restarts[key], Log: in.Log,
		})
	}
	r.mu.Unlock()
	for i := range out {
		out[i].Ready = Ready(ctx, netip.MustParseAddr(out[i].IP)) == nil
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.Pod, b.Pod) })
	return out
}

// Ready probes an istiod's own readiness endpoint on its pod address, the
// one the chart's readinessProbe names (GET :8080/ready).
func Ready(ctx context.Context, ip netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	url := "http://" + netip.AddrPortFrom(ip, 8080).String() + "/ready"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("failed to build request %q: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("failed to probe %q: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failed to probe %q: status %d", url, resp.StatusCode)
	}
	return nil
}

// serve answers /healthz and /istiods on addr until the returned stop is
// called; a serving failure is sent on errs.
func (r *Runner) serve(addr string, errs chan<- error) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /istiods", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Instances(req.Context()))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("failed to serve istiod runner %q: %w", addr, err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}

// List asks the runner serving on addr (a sandbox's injector port, in real
// mode) which istiods run, for `meshroll sandbox istiod list`.
func List(ctx context.Context, addr string) ([]Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "http://" + addr + "/istiods"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build request %q: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to ask istiod runner %q: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to ask istiod runner %q: status %d", url, resp.StatusCode)
	}
	var out []Instance
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("failed to decode answer of %q: %w", url, err)
	}
	return out, nil
}
