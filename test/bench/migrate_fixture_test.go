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

// Sizes of the migration sandbox and of the kubectl sample.
const (
	// migrateNodes fake nodes hold 250 pods each: room for 1,000 workloads
	// plus the surge pods of a rollout and the kubectl sample.
	migrateNodes = 8
	// kubectlNamespaces spread the kubectl sample.
	kubectlNamespaces = 4
	// kubectlParallelism is the seed's "3 workloads at a time".
	kubectlParallelism = 3
)

// migrateSizes reads N (meshroll's workloads) from MESHROLL_BENCH_WORKLOADS
// (default 1,000) and M (the kubectl sample) from
// MESHROLL_BENCH_KUBECTL_WORKLOADS (default 60).
func migrateSizes() (n, m int) {
	n, m = 1000, 60
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_WORKLOADS")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_KUBECTL_WORKLOADS")); err == nil && v > 0 {
		m = v
	}
	return n, m
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
func fullSandbox(b *testing.B, nodes int) (context.Context, *sandbox.State) {
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
	st, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Nodes: nodes, Out: os.Stderr})
	if err != nil {
		b.Fatalf("start migration sandbox: %v", err)
	}
	b.Logf("migration sandbox with %d nodes up in %s", st.NodesReady, time.Since(start).Round(time.Second))
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

func newClients(b *testing.B, st *sandbox.State, count bool) *clients {
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
func seedPlans(ctx context.Context, b *testing.B, kube kubernetes.Interface, plans ...*demo.Plan) {
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
	b.Logf("seeded %d workloads in %s", total, time.Since(start).Round(time.Second))
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

// kubectlRun is what the scripted procedure did.
type kubectlRun struct {
	took   time.Duration
	writes int // labels + restarts
	calls  int // every kubectl invocation
}

// kubectlProcedure scripts the seed's data-plane step with the real kubectl:
// relabel every namespace to the new revision, then restart each Deployment
// and wait for its rollout, parallelism workers at a time, stopping at the
// first failure. The seed's tool also reads the injector ConfigMap and every
// pod's image before restarting; those reads are left out, which only makes
// this baseline faster than the real one.
func kubectlProcedure(ctx context.Context, kubectl, kubeconfig, rev string, p *demo.Plan, parallelism int) (kubectlRun, error) {
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
