package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// stopOrder stops clients before the apiserver and the apiserver before etcd, so nothing logs
// storms of connection errors and a restarted etcd never finds its old peer port still held.
func stopOrder() []string {
	return []string{nameRunner, legacyNameInjector, nameKwok, nameScheduler, nameKCM, nameAPIServer, nameEtcd}
}

// Down stops every process of the sandbox in dir ("" = DefaultDir()), in stopOrder, waiting for
// each to exit (killing it after a grace period). The directory, and with it etcd's data and the
// PKI, is kept so the next Up is fast. Down on a stopped or never-started sandbox does nothing.
func Down(ctx context.Context, dir string) error {
	dir = resolveDir(dir)
	if _, err := os.Stat(statePath(dir)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := lockFile(ctx, lockPath(dir))
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range stopOrder() {
		p := st.process(name)
		if p == nil {
			continue
		}
		// Keep going on failure: stopping the rest still matters more than the order.
		if err := stopProcess(ctx, *p); err != nil {
			errs = append(errs, err)
			continue
		}
		p.PID, p.Running, p.Healthy = 0, false, false
	}
	st.Healthy, st.NodesReady = false, 0
	if st.PodRouted {
		// Only once nothing can serve a pod address any more: the route must
		// never outlive the sandbox, nor vanish under a running one.
		if err := releaseRoutedRange(ctx, dir, st.PodRange); err != nil {
			errs = append(errs, err)
		} else {
			st.PodRouted = false
		}
	}
	if err := saveState(st); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("failed to stop sandbox %q: %w", dir, errors.Join(errs...))
	}
	return nil
}

// Status reports, for the sandbox in dir ("" = DefaultDir()), which processes run and answer
// their health checks, and how many fake nodes are Ready. A sandbox that was never started is
// reported with no processes, not as an error.
func Status(ctx context.Context, dir string) (*State, error) {
	dir = resolveDir(dir)
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	var pr *prober
	if files, err := loadPKI(pkiDir(dir)); err == nil {
		if pr, err = newProber(st.Ports, files); err != nil {
			return nil, err
		}
	}
	if err := st.refresh(ctx, pr); err != nil {
		return st, err
	}
	return st, nil
}

// refresh fills Running, Healthy and NodesReady from the live system; pr may be nil when the
// sandbox has no PKI yet, and then nothing is healthy.
func (s *State) refresh(ctx context.Context, pr *prober) error {
	s.Healthy = len(s.Processes) > 0
	s.NodesReady = 0
	for i := range s.Processes {
		p := &s.Processes[i]
		p.Running = processAlive(p.PID, p.Argv0)
		p.Healthy = p.Running && pr != nil && pr.probeFor(p.Name)(ctx) == nil
		s.Healthy = s.Healthy && p.Healthy
	}
	if api := s.process(nameAPIServer); api == nil || !api.Healthy {
		return nil
	}
	kubeconfig, err := os.ReadFile(s.Kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to read kubeconfig %q: %w", s.Kubeconfig, err)
	}
	cs, err := clientset(kubeconfig)
	if err != nil {
		return err
	}
	if _, s.NodesReady, err = countNodes(ctx, cs); err != nil {
		return err
	}
	return nil
}

// Purge stops the sandbox in dir and deletes its directory (etcd's data, the
// PKI, logs), so the next Up starts from an empty cluster. The demo uses it:
// a second `meshroll demo` must show the same story as the first.
func Purge(ctx context.Context, dir string) error {
	dir = resolveDir(dir)
	if err := Down(ctx, dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to delete sandbox %q: %w", dir, err)
	}
	return nil
}
