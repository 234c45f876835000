package podproc

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/meshroll/meshroll/sandbox/proc"
)

// instance is one running process of a pod.
type instance struct {
	spec spec
	*proc.Process
	// stopping is closed when the runner asked the process to stop.
	stopping chan struct{}
	once     sync.Once
	// ready is the readiness last written to the pod.
	ready atomic.Bool
}

// start runs s's binary in workDir with output appended to logFile.
func start(s spec, workDir, logFile string, extraEnv []string) (*instance, error) {
	p, err := proc.Start(proc.Options{Name: s.binary, Binary: s.binary, Args: s.args, Env: append(append([]string{}, s.env...), extraEnv...),
		WorkDir: workDir, LogFile: logFile, Pod: s.key, UID: string(s.uid), IP: s.ip.String()})
	if err != nil {
		return nil, err
	}
	return &instance{spec: s, Process: p, stopping: make(chan struct{})}, nil
}

// stop sends SIGTERM, waits the pod's grace period (or until ctx ends),
// then kills; it returns once the process is gone. Only the first call
// signals.
func (in *instance) stop(ctx context.Context) {
	first := false
	in.once.Do(func() { first = true; close(in.stopping) })
	if !first {
		<-in.Done()
		return
	}
	in.Stop(ctx, in.spec.grace)
}
