package istiod

import (
	"context"
	"time"

	"github.com/meshroll/meshroll/sandbox/proc"
)

// stopGrace is how long pilot-discovery gets to drain after SIGTERM before
// it is killed; the chart's terminationGracePeriodSeconds is longer, but
// nothing in the sandbox needs a graceful drain.
const stopGrace = 10 * time.Second

// instance is one running pilot-discovery.
type instance struct {
	spec spec
	*proc.Process
}

// start runs bin for s in workDir with output appended to logFile.
func start(s spec, bin, workDir, logFile string, extraArgs, extraEnv []string) (*instance, error) {
	p, err := proc.Start(proc.Options{Name: "pilot-discovery " + s.version, Binary: bin,
		Args: append(append([]string{}, s.args...), extraArgs...), Env: append(append([]string{}, s.env...), extraEnv...),
		WorkDir: workDir, LogFile: logFile, Pod: s.key, UID: string(s.uid), IP: s.ip.String()})
	if err != nil {
		return nil, err
	}
	return &instance{spec: s, Process: p}, nil
}

// stop sends SIGTERM, waits stopGrace, then kills; it returns once the
// process is gone, so its addresses are free for whoever binds them next.
func (in *instance) stop(ctx context.Context) { in.Stop(ctx, stopGrace) }
