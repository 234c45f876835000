package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/report"
)

// watchProbe runs the --probe URL for the whole run when a report is
// written, so the report shows every second's calls, failures and latency
// with the waves marked (the probe gate only samples a few seconds after
// each wave). The returned func stops it and returns the series; nil when
// no probe runs.
func (u *upgradeRun) watchProbe(ctx context.Context) func() *report.Traffic {
	if u.f.probe == "" || u.f.report == "" {
		return func() *report.Traffic { return nil }
	}
	w := gate.StartWatch(ctx, u.f.probe, gate.DefaultWatchQPS, 2*time.Second)
	fmt.Fprintf(u.w, "probe: calling %s %d times a second until the run ends (per-second series in the report)\n", u.f.probe, gate.DefaultWatchQPS)
	return w.Stop
}
