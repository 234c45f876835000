package podproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/meshroll/meshroll/sandbox/proc"
)

// The readiness prober: every probePeriod, failing after probeFailures
// misses in a row (the kubelet's default failureThreshold). The period is
// shorter than the kubelet's default 10 s so tests do not wait on it.
const (
	probePeriod   = 500 * time.Millisecond
	probeFailures = 3
	probeTimeout  = time.Second
)

// watchReady probes in's process like the kubelet runs the container's
// readinessProbe and mirrors the result in the pod's Ready condition; a
// process that exits makes its pod not Ready at once. It returns when the
// process exits, is told to stop (its pod is terminating: endpoints drop it
// on their own), or ctx ends.
func (r *Runner) watchReady(ctx context.Context, in *instance) {
	set := func(v bool) {
		if err := proc.SetPodReady(ctx, r.kube, in.spec.key, in.spec.uid, "", v); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("failed to set pod readiness", "pod", in.spec.key, "ready", v, "err", err)
			}
			return
		}
		in.ready.Store(v)
	}
	t := time.NewTicker(probePeriod)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-in.Done():
			set(false)
			return
		case <-in.stopping:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := check(ctx, in.spec.ip, in.spec.probe); err != nil {
			fails++
			if in.ready.Load() && fails >= probeFailures {
				set(false)
			}
			continue
		}
		fails = 0
		if !in.ready.Load() {
			set(true)
			r.log.Info("process ready", "pod", in.spec.key, "after", time.Since(in.Started).Round(time.Millisecond))
		}
	}
}

// check runs one probe against ip; no probe passes.
func check(ctx context.Context, ip netip.Addr, p probe) error {
	if p.port == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	addr := netip.AddrPortFrom(ip, p.port).String()
	if p.path == "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("failed to connect to %q: %w", addr, err)
		}
		return c.Close()
	}
	url := "http://" + addr + p.path
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
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("failed to probe %q: status %d", url, resp.StatusCode)
	}
	return nil
}
