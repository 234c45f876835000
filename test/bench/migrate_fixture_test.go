package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
)

// Shape of the migration sandbox and of the kubectl baseline.
const (
	// podsPerNode is what sandbox nodes hold.
	podsPerNode = 250
	// migrateNamespaces spread each side's workloads; the kubectl side uses
	// only the revision-labelled half of twice as many.
	migrateNamespaces = 20
	// kubectlParallelism is the seed's "3 workloads at a time".
	kubectlParallelism = 3
)

// migrateNodes gives room for both sides' pods (one each per workload) plus
// rollout surge and the control plane.
func migrateNodes(workloads int) int { return (2*workloads+podsPerNode-1)/podsPerNode + 2 }

// benchConfig is one migration comparison.
type benchConfig struct {
	workloads int                   // per side
	delay     sandbox.PodStartDelay // how long each pod takes to start
	// kubectlSample, when in [0, workloads), runs the kubectl procedure
	// over only that many workloads (0: not at all). It is for quick
	// diagnosis of meshroll's side: its ratio is extrapolated and says so;
	// the target is judged only over the full set (the default).
	kubectlSample int
}

// sampled reports whether the kubectl side runs over fewer than all workloads.
func (c benchConfig) sampled() bool { return c.kubectlSample < c.workloads }

// benchConfigFromEnv reads MESHROLL_BENCH_WORKLOADS (default 1,000),
// MESHROLL_BENCH_POD_START ("5s-15s" by default: Ready 10 s ± 5 s after
// scheduling, what image pulls and readiness probes make of a real pod) and
// MESHROLL_BENCH_KUBECTL_SAMPLE (default: all workloads).
func benchConfigFromEnv() (benchConfig, error) {
	c := benchConfig{workloads: 1000, delay: sandbox.PodStartDelay{Min: 5 * time.Second, Max: 15 * time.Second}}
	if v := os.Getenv("MESHROLL_BENCH_WORKLOADS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			return c, fmt.Errorf("invalid MESHROLL_BENCH_WORKLOADS %q: want a count of at least 2", v)
		}
		c.workloads = n
	}
	c.kubectlSample = c.workloads
	if v := os.Getenv("MESHROLL_BENCH_KUBECTL_SAMPLE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > c.workloads {
			return c, fmt.Errorf("invalid MESHROLL_BENCH_KUBECTL_SAMPLE %q: want a count from 0 to MESHROLL_BENCH_WORKLOADS (%d)", v, c.workloads)
		}
		c.kubectlSample = n
	}
	if v := os.Getenv("MESHROLL_BENCH_POD_START"); v != "" {
		d, err := parsePodStart(v)
		if err != nil {
			return c, err
		}
		c.delay = d
	}
	return c, nil
}

// parsePodStart reads "10s" or "5s-15s".
func parsePodStart(v string) (sandbox.PodStartDelay, error) {
	lo, hi, ranged := strings.Cut(v, "-")
	var d sandbox.PodStartDelay
	var err1, err2 error
	d.Min, err1 = time.ParseDuration(lo)
	d.Max = d.Min
	if ranged {
		d.Max, err2 = time.ParseDuration(hi)
	}
	if err1 != nil || err2 != nil || d.Min < 0 || d.Max < d.Min {
		return d, fmt.Errorf("invalid MESHROLL_BENCH_POD_START %q: want a duration (10s) or a range (5s-15s)", v)
	}
	return d, nil
}

// fullSandbox starts a sandbox of its own with controller-manager,
// scheduler and kwok (the package's TestMain starts an API-only one, where
// nothing ever rolls out) and stops it when the benchmark ends. Its directory
// follows sandboxtest's conventions (meshroll-sandbox-* with owner.pid), so a
// later test binary reaps it if this one is killed before cleanup runs.
//
// The returned context ends when one of the sandbox's processes dies, so a
// sandbox killed from outside fails the benchmark at once instead of at the
// end of a 30-minute wait.
func fullSandbox(b testing.TB, nodes int, delay sandbox.PodStartDelay) (context.Context, *sandbox.State) {
	b.Helper()
	dir, err := os.MkdirTemp("", "meshroll-sandbox-*")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sandbox.Down(ctx, dir); err != nil {
			b.Errorf("stop migration sandbox: %v", err)
			return
		}
		if b.Failed() {
			b.Logf("migration sandbox logs kept in %s", filepath.Join(dir, "logs"))
			return
		}
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	// AllowNoIstiod: on a host that cannot run istiod, istiodtest.Run then
	// skips saying why instead of Up failing.
	st, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Nodes: nodes, Out: os.Stderr, PodStartDelay: delay, AllowNoIstiod: true})
	if err != nil {
		b.Fatalf("start migration sandbox: %v", err)
	}
	progress(b, "migration sandbox with %d nodes (pod start %s) up in %s", st.NodesReady, delay, time.Since(start).Round(time.Second))
	alive, stop := context.WithCancelCause(context.Background())
	b.Cleanup(func() { stop(nil) }) // runs before the Down registered above
	go watchSandbox(alive, stop, dir)
	return alive, st
}

// watchSandbox cancels ctx with a cause naming the first sandbox process
// found dead.
func watchSandbox(ctx context.Context, cancel context.CancelCauseFunc, dir string) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, err := sandbox.Status(ctx, dir)
		if err != nil {
			continue // a slow probe on a loaded machine is no death
		}
		for _, p := range st.Processes {
			if !p.Running {
				cancel(fmt.Errorf("sandbox %s: %s (pid %d) is no longer running; see %s", dir, p.Name, p.PID, p.Log))
				return
			}
		}
	}
}

// clients are one side's API clients. writes counts what they send that is
// not a GET (reads, lists and watches are all GETs).
type clients struct {
	cfg    *rest.Config
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	meta   metadata.Interface
	writes *atomic.Int64
}

func newClients(b testing.TB, st *sandbox.State, count bool) *clients {
	b.Helper()
	cfg, err := st.RESTConfig()
	if err != nil {
		b.Fatal(err)
	}
	c := &clients{cfg: cfg, writes: &atomic.Int64{}}
	if count {
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return writeCounter{rt: rt, n: c.writes}
		}
	}
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		b.Fatal(err)
	}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		b.Fatal(err)
	}
	if c.meta, err = metadata.NewForConfig(cfg); err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *clients) cp() controlplane.Clients {
	return controlplane.Clients{Kube: c.kube, Dynamic: c.dyn}
}

// writeCounter counts mutating requests.
type writeCounter struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (w writeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		w.n.Add(1)
	}
	return w.rt.RoundTrip(r)
}

// seedPlans creates the plans and waits until every pod of all of them runs.
func seedPlans(ctx context.Context, b testing.TB, kube kubernetes.Interface, plans ...*demo.Plan) {
	b.Helper()
	start := time.Now()
	total := 0
	for _, p := range plans {
		if err := demo.Apply(ctx, kube, p); err != nil {
			b.Fatal(err)
		}
		total += len(p.Workloads)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	for _, p := range plans {
		if err := demo.WaitReady(wctx, kube, p); err != nil {
			b.Fatal(err)
		}
	}
	progress(b, "seeded %d workloads in %s", total, time.Since(start).Round(time.Second))
}

// revisionLabelledOnly keeps the namespaces of p labelled istio.io/rev and
// their workloads: the seed's procedure moves namespaces by relabelling them.
func revisionLabelledOnly(p *demo.Plan) *demo.Plan {
	out := &demo.Plan{Options: p.Options}
	keep := map[string]bool{}
	for _, ns := range p.Namespaces {
		if ns.Style == demo.StyleRevision {
			out.Namespaces = append(out.Namespaces, ns)
			keep[ns.Name] = true
		}
	}
	for _, w := range p.Workloads {
		if keep[w.Namespace] {
			out.Workloads = append(out.Workloads, w)
		}
	}
	return out
}

// firstWorkloads keeps the first n workloads of p and their namespaces.
func firstWorkloads(p *demo.Plan, n int) *demo.Plan {
	out := &demo.Plan{Options: p.Options, Workloads: p.Workloads[:min(n, len(p.Workloads))]}
	keep := map[string]bool{}
	for _, w := range out.Workloads {
		keep[w.Namespace] = true
	}
	for _, ns := range p.Namespaces {
		if keep[ns.Name] {
			out.Namespaces = append(out.Namespaces, ns)
		}
	}
	return out
}

// kubectlRun is what the scripted procedure did.
type kubectlRun struct {
	took   time.Duration
	writes int // labels + restarts
	calls  int // every kubectl invocation
	load   loadStats
}

// kubectlProcedure scripts the seed's data-plane step with the real kubectl:
// relabel every namespace to the new revision, then restart each Deployment
// and wait for its rollout, parallelism workers at a time, stopping at the
// first failure. The seed's tool also reads the injector ConfigMap and every
// pod's image before restarting; those reads are left out, which only makes
// this baseline faster than the real one.
//
// Every 50 finished workloads it reports how far it got on report, since the
// whole procedure takes about an hour at 1,000 workloads.
func kubectlProcedure(ctx context.Context, kubectl, kubeconfig, rev string, p *demo.Plan, parallelism int, report func(done int, took time.Duration)) (kubectlRun, error) {
	var (
		res   kubectlRun
		calls atomic.Int64
	)
	run := func(args ...string) error {
		calls.Add(1)
		args = append(args, "--kubeconfig", kubeconfig)
		out, err := exec.CommandContext(ctx, kubectl, args...).CombinedOutput()
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), context.Cause(ctx))
		}
		if err != nil {
			return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	start := time.Now()
	for _, ns := range p.NamespaceNames() {
		if err := run("label", "namespace", ns, istio.LabelRev+"="+rev, "--overwrite"); err != nil {
			return res, err
		}
		res.writes++
	}
	jobs := make(chan demo.WorkloadSpec)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		first    error
		restarts atomic.Int64
		finished atomic.Int64
		stop     = make(chan struct{})
	)
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range jobs {
				ref := "deployment/" + w.Name
				err := run("rollout", "restart", ref, "-n", w.Namespace)
				if err == nil {
					restarts.Add(1)
					err = run("rollout", "status", ref, "-n", w.Namespace, "--timeout=5m")
				}
				if err == nil {
					if n := finished.Add(1); n%50 == 0 && report != nil {
						report(int(n), time.Since(start))
					}
				}
				if err != nil {
					once.Do(func() { first = err; close(stop) })
				}
			}
		}()
	}
feed:
	for _, w := range p.Workloads {
		select {
		case jobs <- w:
		case <-stop:
			break feed // the seed's tool stops at the first failed rollout
		}
	}
	close(jobs)
	wg.Wait()
	res.took = time.Since(start)
	res.writes += int(restarts.Load())
	res.calls = int(calls.Load())
	return res, first
}

// progress logs a line at once on stderr (a benchmark's own log shows only
// when it ends, an hour later) and in the benchmark's log.
func progress(tb testing.TB, format string, args ...any) {
	tb.Helper()
	line := fmt.Sprintf(format, args...)
	if l, err := loadAvg(); err == nil {
		line += fmt.Sprintf(" [host load %.1f]", l)
	}
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().UTC().Format("15:04:05"), line)
	tb.Log(line)
}
