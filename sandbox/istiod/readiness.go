package istiod

import (
	"context"
	"time"

	"github.com/meshroll/meshroll/sandbox/proc"
)

// The readiness prober, like the kubelet's: every probePeriod, failing
// after probeFailures misses in a row (the chart's probe has the default
// failureThreshold of 3).
const (
	probePeriod   = time.Second
	probeFailures = 3
)

// watchReady probes in's istiod like the kubelet runs the pod's
// readinessProbe and mirrors the result in the pod's Ready condition:
// kwok starts istiod pods not Ready in real-istiod mode, so a Deployment is
// available, and the istiod Service has a ready endpoint that the API server
// calls webhooks on, only once istiod really serves. A process that exits
// makes its pod not Ready at once. It returns when the process has exited or
// ctx ends (a runner that stops leaves its pods as they are, like a kubelet
// that dies).
func (r *Runner) watchReady(ctx context.Context, in *instance) {
	ready := true // unknown: the first set(false) writes if the pod says otherwise
	set := func(v bool) {
		if err := proc.SetPodReady(ctx, r.kube, in.spec.key, in.spec.uid, containerName, v); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("failed to set pod readiness", "pod", in.spec.key, "ready", v, "err", err)
			}
			return
		}
		ready = v
	}
	set(false)
	t := time.NewTicker(probePeriod)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-in.Done():
			set(false)
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := Ready(ctx, in.spec.ip); err != nil {
			fails++
			if ready && fails >= probeFailures {
				set(false)
			}
			continue
		}
		fails = 0
		if !ready {
			set(true)
			r.log.Info("istiod ready", "pod", in.spec.key, "after", time.Since(in.Started).Round(time.Millisecond))
		}
	}
}
