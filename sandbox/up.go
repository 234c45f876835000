package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Up starts the sandbox in opts.Dir, or completes one whose processes are partly gone, and
// returns once the API is ready, the requested fake nodes are Ready and pods can be created in
// namespace default. On a running, healthy sandbox it only adds missing nodes. Processes are
// detached: they keep running after the caller exits, until Down.
func Up(ctx context.Context, opts Options) (*State, error) {
	began := time.Now()
	dir := resolveDir(opts.Dir)
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create sandbox directory %q: %w", dir, err)
	}
	unlock, err := lockFile(ctx, lockPath(dir))
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = EnsureBinaries(ctx, out); err != nil {
			return nil, err
		}
	}
	if err := checkBinaries(binDir); err != nil {
		return nil, fmt.Errorf("failed to use binaries %q: %w", binDir, err)
	}
	st.BinDir = binDir
	mode := st.Istiod
	if !opts.APIOnly {
		if mode, err = setupPodRange(ctx, out, st, opts.AllowNoIstiod, claimRoutedRangeWaiting(out)); err != nil {
			return st, err
		}
	}
	if err := assignPorts(st.Ports); err != nil {
		return nil, err
	}
	files, err := ensurePKI(pkiDir(dir), time.Now())
	if err != nil {
		return nil, err
	}
	kubeconfig, err := adminKubeconfig(st.Ports[PortAPIServer], files)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(st.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("failed to write kubeconfig %q: %w", st.Kubeconfig, err)
	}
	pr, err := newProber(st.Ports, files)
	if err != nil {
		return nil, err
	}
	if err := saveState(st); err != nil {
		return nil, err
	}

	comps := controlPlane(dir, st.Ports, pr)
	// kwokStarts says this Up starts kwok, so its address pool is new.
	kwokStarts := false
	for i := range comps {
		comps[i].args = append([]string{filepath.Join(binDir, comps[i].name)}, comps[i].args...)
	}
	// etcd, then the apiserver: each needs the one before. The API clients only need the
	// apiserver, so they start together and are awaited together.
	if err := ensureRunning(ctx, out, st, comps[0:1]); err != nil {
		return st, err
	}
	if err := ensureRunning(ctx, out, st, comps[1:2]); err != nil {
		return st, err
	}
	cs, err := clientset(kubeconfig)
	if err != nil {
		return st, err
	}
	if p := st.process(nameKwok); p != nil && (st.Istiod != "" && st.Istiod != mode || st.PodStartDelay != opts.PodStartDelay.String()) {
		// kwok's pod stages depend on the mode and the start delay: a switch restarts it.
		if err := stopProcess(ctx, *p); err != nil {
			return st, err
		}
	}
	if opts.APIOnly {
		comps = comps[:2]
	} else if p := st.process(nameKwok); p == nil || !processAlive(p.PID, p.Argv0) || st.KwokBlock == "" {
		// kwok forgets which addresses it gave out when it stops: each start
		// gets a block no live pod holds an address in.
		if err := planKwokBlock(ctx, cs, st); err != nil {
			return st, err
		}
		kwokStarts = true
	}
	if comps, err = withKwok(comps, dir, st.KwokBlock, mode); err != nil {
		return st, err
	}
	if comps, err = withStageDelay(comps, dir, mode, opts.PodStartDelay); err != nil {
		return st, err
	}
	st.PodStartDelay = opts.PodStartDelay.String()
	if err := ensureRunning(ctx, out, st, comps[2:]); err != nil {
		return st, err
	}
	if len(opts.Runner) > 0 && mode == IstiodReal {
		runner := component{
			name: nameRunner,
			args: opts.Runner,
			env: []string{
				EnvDir + "=" + dir,
				"KUBECONFIG=" + st.Kubeconfig,
				EnvRunnerPort + "=" + strconv.Itoa(st.Ports[PortRunner]),
			},
			probe:   pr.probeFor(nameRunner),
			timeout: runnerTimeout,
		}
		if err := ensureRunning(ctx, out, st, []component{runner}); err != nil {
			return st, err
		}
	}
	st.Istiod = mode
	want := opts.Nodes
	if want <= 0 {
		want = DefaultNodes
	}
	if !opts.APIOnly {
		st.Nodes = max(st.Nodes, want)
		if st.NodesReady, err = ensureNodes(ctx, cs, want); err != nil {
			return st, fmt.Errorf("%w\n%s", err, logTail(logPath(dir, nameKwok), 20))
		}
		if err := waitDefaultServiceAccount(ctx, cs); err != nil {
			return st, fmt.Errorf("%w\n%s", err, logTail(logPath(dir, nameKCM), 20))
		}
		if kwokStarts {
			if err := primeKwokPool(ctx, out, cs, nodeName(0)); err != nil {
				return st, fmt.Errorf("%w\n%s", err, logTail(logPath(dir, nameKwok), 20))
			}
		}
	}
	if len(opts.Runner) == 0 || mode != IstiodReal {
		st.dropDead(nameRunner) // a runner from an earlier Up that was not asked for again
	}
	if err := st.refresh(ctx, pr); err != nil {
		return st, err
	}
	if err := saveState(st); err != nil {
		return st, err
	}
	fmt.Fprintf(out, "sandbox ready in %s (%d nodes): export KUBECONFIG=%s\n",
		time.Since(began).Round(100*time.Millisecond), st.NodesReady, st.Kubeconfig)
	return st, nil
}

// ensureRunning starts every component of the group that is not running (recording it in state
// at once, so Down can find it even if Up fails later), then waits until all of them are ready.
func ensureRunning(ctx context.Context, out io.Writer, st *State, group []component) error {
	for _, c := range group {
		if p := st.process(c.name); p != nil && processAlive(p.PID, p.Argv0) {
			continue
		}
		fmt.Fprintf(out, "starting %s\n", c.name)
		p, err := startProcess(st.Dir, c.name, c.args, c.env)
		if err != nil {
			return err
		}
		st.setProcess(p)
		if err := saveState(st); err != nil {
			return err
		}
	}
	for _, c := range group {
		if err := waitReady(ctx, *st.process(c.name), c.probe, c.timeout); err != nil {
			return err
		}
	}
	return nil
}

// RESTConfig returns a client configuration for the sandbox's admin user.
func (s *State) RESTConfig() (*rest.Config, error) {
	b, err := os.ReadFile(s.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("failed to read kubeconfig %q: %w", s.Kubeconfig, err)
	}
	return restConfig(b)
}

// restConfig parses a kubeconfig and raises the client rate limits, since the sandbox is local
// and tests create many objects quickly.
func restConfig(kubeconfig []byte) (*rest.Config, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("failed to parse kubeconfig %q: %w", contextName, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// clientset builds a typed client from kubeconfig bytes.
func clientset(kubeconfig []byte) (*kubernetes.Clientset, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create client for %q: %w", cfg.Host, err)
	}
	return cs, nil
}
