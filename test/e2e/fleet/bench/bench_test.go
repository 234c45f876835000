// Package bench measures `meshroll fleet status` over many real API servers:
// ten API-only sandboxes (etcd + kube-apiserver, objects created directly)
// each holding Istio 1.23.2's rendered control-plane objects and a seeded
// mesh. It starts nothing unless a benchmark is asked for.
package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/test/e2e/fleet/fleettest"
)

// clusters is how many API servers the fleet has (MESHROLL_BENCH_CLUSTERS,
// default 10); pods how many pods each holds (MESHROLL_BENCH_CLUSTER_PODS,
// default 2,000).
func sizes() (clusters, pods int) {
	clusters, pods = 10, 2000
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_CLUSTERS")); err == nil && v > 0 {
		clusters = v
	}
	if v, err := strconv.Atoi(os.Getenv("MESHROLL_BENCH_CLUSTER_PODS")); err == nil && v > 0 {
		pods = v
	}
	return clusters, pods
}

var dirs []string

// fleetFile is the fleet file the benchmark writes, beside the sandboxes.
var fleetFile string

// benchNamespaces spread each cluster's workloads.
const benchNamespaces = 10

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // no benchmark asked for: no sandbox
	}
	tmp, err := os.MkdirTemp("", "meshroll-fleet-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n, _ := sizes()
	for i := range n {
		dirs = append(dirs, filepath.Join(tmp, fmt.Sprintf("c%02d", i)))
	}
	code := 1
	start := time.Now()
	if err := fleettest.Each(3, dirs, func(d string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		_, err := sandbox.Up(ctx, sandbox.Options{Dir: d, APIOnly: true})
		return err
	}); err != nil {
		fmt.Fprintf(os.Stderr, "fleet bench: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "fleet bench: %d API-only sandboxes up in %s\n", n, time.Since(start).Round(time.Second))
		code = m.Run()
	}
	if os.Getenv("MESHROLL_BENCH_HOLD") != "" {
		// Keep the seeded fleet up for profiling by hand (pprof on the
		// API servers, meshroll runs with other flags) until interrupted.
		fmt.Fprintf(os.Stderr, "fleet bench: holding the sandboxes; fleet file %s; interrupt to tear down\n", fleetFile)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	_ = fleettest.Each(len(dirs), dirs, func(d string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return sandbox.Down(ctx, d)
	})
	if code == 0 {
		_ = os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// seedAll applies Istio's rendered objects (rendered once) and a mesh of
// pods to every cluster.
func seedAll(b *testing.B, pods int) {
	ctx := context.Background()
	objs, err := istio.Render(ctx, istio.RenderOptions{Version: "1.23.2", Revision: "1-23-2"})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range objs {
		unreachableHooks(o)
	}
	start := time.Now()
	if err := fleettest.Each(2, dirs, func(d string) error { return seed(ctx, d, objs, pods) }); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d clusters × %d pods in %s", len(dirs), pods, time.Since(start).Round(time.Second))
}

// unreachableHooks keeps Istio's webhooks (no istiod runs) out of the pod
// writes while leaving their namespace selectors, which inventory reads.
func unreachableHooks(o *unstructured.Unstructured) {
	if !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
		return
	}
	hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
	for _, h := range hooks {
		if m, ok := h.(map[string]any); ok {
			m["failurePolicy"] = "Ignore"
			m["objectSelector"] = map[string]any{"matchLabels": map[string]any{"meshroll.io/bench": "never"}}
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
}

func seed(ctx context.Context, dir string, objs []*unstructured.Unstructured, pods int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", sandbox.KubeconfigPath(dir))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// No controller-manager runs: the namespaces and their default
	// ServiceAccounts (pod admission needs them) are created here.
	nss := []string{istio.SystemNamespace}
	for i := range benchNamespaces {
		nss = append(nss, fmt.Sprintf("bench-%03d", i))
	}
	for _, ns := range nss {
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
		if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	a := controlplane.NewApplier(dc, kc.Discovery(), false)
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.DeepCopy())
		} else {
			rest = append(rest, o.DeepCopy())
		}
	}
	if _, err := a.Apply(ctx, crds); err != nil {
		return fmt.Errorf("apply CRDs in %s: %w", dir, err)
	}
	if _, err := a.Apply(ctx, rest); err != nil {
		return fmt.Errorf("apply Istio in %s: %w", dir, err)
	}
	// Pods are created directly (nothing would reconcile an owner), bound
	// to no node, each looking injected by 1-23-2: what inventory reads is
	// the same as in a live cluster.
	return fleettest.Each(16, make([]int, pods), indexed(func(i int) error {
		ns := fmt.Sprintf("bench-%03d", i%benchNamespaces)
		_, err := kc.CoreV1().Pods(ns).Create(ctx, injectedPod(ns, fmt.Sprintf("app-%03d-%05d", (i/10)%1000, i)), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}))
}

// indexed turns fn(i) into the per-item function Each wants, numbering the
// items in the order Each was handed them.
func indexed(fn func(i int) error) func(int) error {
	var mu sync.Mutex
	next := 0
	return func(int) error {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		return fn(i)
	}
}

// injectedPod is a pod as Istio 1.23.2's injector leaves it.
func injectedPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"app": name[:len("app-000")], istio.LabelRev: "1-23-2", "security.istio.io/tlsMode": "istio"},
			Annotations: map[string]string{"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"1-23-2"}`}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "istio-init", Image: "docker.io/istio/proxyv2:1.23.2"}},
			Containers: []corev1.Container{{Name: "app", Image: demo.PauseImage},
				{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.23.2"}},
		},
	}
}

// usage is what one meshroll run cost: wall time, the client's peak RSS and
// CPU, and the CPU the API servers and etcds behind it spent meanwhile.
type usage struct {
	wall      time.Duration
	rssKiB    int64
	clientCPU time.Duration
	serverCPU time.Duration
	etcdCPU   time.Duration // the etcds' part of serverCPU
}

// run times one meshroll process against the sandboxes in serving.
func run(b *testing.B, bin string, serving []string, args ...string) usage {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	before, beforeEtcd := serverCPU(serving)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("meshroll %s: %v", strings.Join(args, " "), err)
	}
	after, afterEtcd := serverCPU(serving)
	u := usage{wall: time.Since(start), serverCPU: after - before, etcdCPU: afterEtcd - beforeEtcd}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.rssKiB = ru.Maxrss // KiB on Linux
		u.clientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return u
}

// serverCPU sums the CPU time (user + system) of every process whose
// command line names one of dirs: the sandboxes' etcd and kube-apiserver;
// etcd is the etcds' part of it.
func serverCPU(dirs []string) (all, etcd time.Duration) {
	ents, _ := os.ReadDir("/proc")
	var ticks, etcdTicks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		mine := false
		for _, d := range dirs {
			mine = mine || strings.Contains(string(cl), d+"/") || strings.Contains(string(cl), d+"\x00")
		}
		if !mine {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis; utime and stime
		// are the 14th and 15th of the whole line.
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
			if strings.HasPrefix(filepath.Base(strings.SplitN(string(cl), "\x00", 2)[0]), "etcd") {
				etcdTicks += u + s
			}
		}
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100
	return time.Duration(ticks) * tick, time.Duration(etcdTicks) * tick
}

// BenchmarkFleetStatus compares `meshroll fleet status` over every cluster
// with the slowest `meshroll status` of one of them (each a real process).
// Target: ≤ 1.5× the slowest single cluster. Memory per cluster is the
// fleet run's peak RSS above a single run's, per extra cluster. CPU is
// split between the client and the API servers + etcds (from /proc), which
// says whether the fleet run is bound by the machine's cores: on two cores,
// ten clusters' server work alone bounds the fleet run from below
// (x-cpu-floor). Run it with -benchtime 5x or more: wall times are medians
// over the iterations. With MESHROLL_BENCH_PROFILE=<file> the last fleet
// run writes its CPU profile; with MESHROLL_BENCH_HOLD=1 the sandboxes stay
// up after it until interrupted.
func BenchmarkFleetStatus(b *testing.B) {
	_, pods := sizes()
	seedAll(b, pods)
	bin := fleettest.MustBuildMeshroll(b)
	file := filepath.Join(filepath.Dir(dirs[0]), "fleet.yaml")
	fleetFile = file
	var sb strings.Builder
	sb.WriteString("clusters:\n")
	for i, d := range dirs {
		fmt.Fprintf(&sb, "- name: c%02d\n  kubeconfig: %s\n  labels: {env: bench, shard: %q}\n", i, sandbox.KubeconfigPath(d), strconv.Itoa(i%3))
	}
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	fleetArgs := []string{"fleet", "status", "-o", "json", "--fleet", file, "--kubeconfig", sandbox.KubeconfigPath(dirs[0])}
	singleArgs := func(d string) []string {
		return []string{"status", "-o", "json", "--kubeconfig", sandbox.KubeconfigPath(d)}
	}
	// One unmeasured round first: single runs measured right after
	// seeding took 0.6-1.2 s, the same runs a minute later 0.2 s, and that
	// flattered the ratio (2.5x then, against about 6x settled).
	for _, d := range dirs {
		run(b, bin, []string{d}, singleArgs(d)...)
	}
	run(b, bin, dirs, fleetArgs...)
	var fleet, single usage
	var fleetWalls []time.Duration
	singleWalls := make([][]time.Duration, len(dirs))
	var singleCPU, singleServer, singleEtcd time.Duration
	load := loadavg()
	b.ResetTimer()
	for b.Loop() {
		for i, d := range dirs {
			u := run(b, bin, []string{d}, singleArgs(d)...)
			singleWalls[i] = append(singleWalls[i], u.wall)
			single.rssKiB = max(single.rssKiB, u.rssKiB)
			singleCPU += u.clientCPU
			singleServer += u.serverCPU
			singleEtcd += u.etcdCPU
		}
		u := run(b, bin, dirs, fleetArgs...)
		fleetWalls = append(fleetWalls, u.wall)
		fleet.clientCPU += u.clientCPU
		fleet.serverCPU += u.serverCPU
		fleet.etcdCPU += u.etcdCPU
		fleet.rssKiB = max(fleet.rssKiB, u.rssKiB)
	}
	b.StopTimer()
	timeline(b, bin, fleetArgs)
	if base := os.Getenv("MESHROLL_BENCH_BASELINE"); base != "" {
		// The same measurement with another build (e.g. the commit before a
		// change), in the same run and on the same sandboxes.
		var slow time.Duration
		for _, d := range dirs {
			slow = max(slow, run(b, base, []string{d}, singleArgs(d)...).wall)
		}
		u := run(b, base, dirs, fleetArgs...)
		b.Logf("baseline %s: fleet status %s, slowest single status %s (%.2fx); client CPU %s, servers CPU %s",
			base, u.wall.Round(time.Millisecond), slow.Round(time.Millisecond), float64(u.wall)/float64(slow),
			u.clientCPU.Round(time.Millisecond), u.serverCPU.Round(time.Millisecond))
	}
	if prof := os.Getenv("MESHROLL_BENCH_PROFILE"); prof != "" {
		run(b, bin, dirs, append(fleetArgs, "--cpuprofile", prof)...)
	}
	n, iters := int64(len(dirs)), float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / iters / 1e6 }
	// The slowest cluster is the one whose median single run is the
	// longest: one run's hiccup (a GC, a scheduling delay) is not a
	// cluster's speed.
	var slowest, sum time.Duration
	for _, w := range singleWalls {
		slowest = max(slowest, median(w))
		sum += median(w)
	}
	fleetWall := median(fleetWalls)
	b.ReportMetric(float64(fleetWall)/float64(slowest), "x-slowest-single")
	b.ReportMetric(float64(fleetWall)/1e6, "fleet-ms")
	b.ReportMetric(float64(slowest)/1e6, "slowest-single-ms")
	b.ReportMetric(float64(sum)/1e6, "sum-of-singles-ms")
	// What the machine's cores allow at best: the fleet run's CPU (client,
	// API servers, etcds) spread over every core, against the slowest
	// single run. A ratio near it means the run is bound by the cores,
	// not by how meshroll waits.
	cpu := float64(fleet.clientCPU+fleet.serverCPU) / iters / float64(runtime.NumCPU())
	b.ReportMetric(cpu/float64(slowest), "x-cpu-floor")
	b.ReportMetric(ms(fleet.clientCPU), "fleet-client-cpu-ms")
	b.ReportMetric(ms(fleet.serverCPU), "fleet-server-cpu-ms")
	b.ReportMetric(ms(fleet.etcdCPU), "fleet-etcd-cpu-ms")
	b.ReportMetric(ms(singleEtcd)/float64(n), "single-etcd-cpu-ms")
	b.ReportMetric(ms(singleCPU)/float64(n), "single-client-cpu-ms")
	b.ReportMetric(ms(singleServer)/float64(n), "single-server-cpu-ms")
	b.ReportMetric(float64(fleet.rssKiB)/1024, "fleet-maxrss-MB")
	b.ReportMetric(float64(single.rssKiB)/1024, "single-maxrss-MB")
	b.ReportMetric(float64(fleet.rssKiB-single.rssKiB)/1024/float64(n-1), "MB-per-extra-cluster")
	b.ReportMetric(load, "loadavg-1m-at-start")
}

// median of ds (the lower middle for an even count); ds is sorted in place.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)/2]
}

// loadavg is the machine's one-minute load when the measurement starts:
// timings on a shared two-core machine mean little without it.
func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

// timeline logs one more fleet run's per-cluster read times (the rows'
// "took"): all alike means the clusters share one bottleneck (the cores);
// a few slow ones would point at those clusters.
func timeline(b *testing.B, bin string, args []string) {
	start := time.Now()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		b.Fatalf("meshroll %s: %v", strings.Join(args, " "), err)
	}
	wall := time.Since(start)
	var view struct {
		Clusters []struct {
			Name  string        `json:"name"`
			Took  time.Duration `json:"took"`
			Error string        `json:"error"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal(out, &view); err != nil {
		b.Fatalf("decode fleet status: %v", err)
	}
	var sb strings.Builder
	for _, c := range view.Clusters {
		fmt.Fprintf(&sb, " %s=%s", c.Name, c.Took.Round(time.Millisecond))
		if c.Error != "" {
			b.Errorf("cluster %s: %s", c.Name, c.Error)
		}
	}
	b.Logf("fleet status in %s; per-cluster read:%s", wall.Round(time.Millisecond), sb.String())
}
