//go:build linux

package xds_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// Load of every run: two clients at 250 calls/s each (≥ 500/s, the seed's
// Fortio rate) against three servers whose calls take 20 ms (about ten
// calls in flight at any time, so a server cut off mid-call shows).
const (
	clientReplicas = 2
	clientQPS      = 250
	serverReplicas = 3
	serverDelay    = "20ms"
	// serverDrain is how long a terminating server keeps serving: the time
	// the mesh needs to learn its endpoint is gone (endpoints controller,
	// istiod's debounce, EDS push) with a wide margin.
	serverDrain = "3s"
	// noDrain is a server that exits at once on SIGTERM, cutting its calls
	// in flight, as an application without drain handling does.
	noDrain = "0s"
	// quiet is the steady load measured before and after each procedure.
	quiet = 15 * time.Second
)

// mesh is one test's servers and clients.
type mesh struct {
	echoNS, clientNS string
	stats            string
	servers, clients *appsv1.Deployment
}

// deployMesh creates the namespaces (on revision rev), servers (Deployment
// server, version v1, draining for drain), their Service echo and the
// clients, and waits until every process is ready.
func (e *env) deployMesh(t *testing.T, prefix, rev, server, drain string) *mesh {
	t.Helper()
	m := &mesh{echoNS: prefix + "-echo", clientNS: prefix + "-client"}
	var err error
	if m.stats, err = os.MkdirTemp("", "meshroll-xds-"+prefix+"-*"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(m.stats) })
	for _, ns := range []string{m.echoNS, m.clientNS} {
		e.namespace(t, ns, map[string]string{istio.LabelRev: rev})
	}
	m.servers = echoServers(m.echoNS, server, "v1", serverReplicas, serverDelay, drain)
	m.clients = clients(m.clientNS, m.echoNS, "echo", clientReplicas, clientQPS, m.stats)
	e.create(t, echoService(m.echoNS, "echo", "echo"), m.servers)
	e.waitAvailable(t, 3*time.Minute, m.servers)
	e.create(t, m.clients)
	e.waitAvailable(t, 3*time.Minute, m.clients)
	e.assertProxies(t, rev, m.echoNS, m.clientNS)
	return m
}

// assertProxies checks that every pod of the namespaces was injected by
// revision rev with its grpc-agent template.
func (e *env) assertProxies(t *testing.T, rev string, nss ...string) {
	t.Helper()
	for _, ns := range nss {
		pods, err := e.kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			status := p.Annotations["sidecar.istio.io/status"]
			if !strings.Contains(status, `"revision":"`+rev+`"`) {
				t.Errorf("pod %s/%s: sidecar.istio.io/status = %q, want revision %s", ns, p.Name, status, rev)
			}
			if !grpcAgent(p) {
				t.Errorf("pod %s/%s was not injected with the grpc-agent template (istio-proxy with ISTIO_META_GENERATOR=grpc)", ns, p.Name)
			}
		}
	}
}

// grpcAgent reports whether Istio injected p with its grpc-agent template:
// an istio-proxy container whose node metadata asks for the gRPC generator.
func grpcAgent(p corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		if c.Name != "istio-proxy" {
			continue
		}
		for _, e := range c.Env {
			if e.Name == "ISTIO_META_GENERATOR" && e.Value == "grpc" {
				return true
			}
		}
	}
	return false
}

// stopClients scales the clients to zero and waits until their processes
// have written their last seconds and exited.
func (e *env) stopClients(t *testing.T, m *mesh) load {
	t.Helper()
	e.scale(t, m.clientNS, m.clients.Name, 0)
	waitFor(t, time.Minute, func(context.Context) (bool, error) {
		for _, in := range e.runner.Instances() {
			if strings.HasPrefix(in.Pod, m.clientNS+"/") {
				return false, fmt.Errorf("client %s still runs", in.Pod)
			}
		}
		return true, nil
	})
	logClientFailures(t, m.clientNS)
	return readLoad(t, m.stats)
}

func (e *env) scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	if _, err := e.kube.AppsV1().Deployments(ns).Patch(context.WithoutCancel(t.Context()), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// report logs the phases and the per-second series and returns the
// summaries.
func report(t *testing.T, l load, start time.Time, phases []phase) []summary {
	t.Helper()
	var out []summary
	for _, p := range phases {
		s := l.summarize(p)
		t.Logf("MEASURE %s", s)
		out = append(out, s)
	}
	t.Logf("per-second series (every client merged):\n%s", l.series(start, phases))
	return out
}

// upgradeRun is what runUpgrade measured.
type upgradeRun struct {
	before, during, after summary
}

// runUpgrade measures the load on m for quiet, through `meshroll upgrade
// --to 1.24.2 --prune` of m's namespaces (servers first), and for quiet
// after; it checks that the upgrade happened.
func (e *env) runUpgrade(t *testing.T, m *mesh, name string, extra ...string) (upgradeRun, string) {
	t.Helper()
	start := time.Now()
	time.Sleep(quiet)
	upgradeStart := time.Now()
	out := meshroll(t, append([]string{"upgrade", "--to", toVersion, "--from", fromRev, "--name", name,
		"--namespace-only", m.echoNS + "," + m.clientNS, "--first", m.echoNS, "--waves", "1,100%",
		"--prune", "--set", noRetries, "--report", filepath.Join(m.stats, "upgrade.html")}, extra...)...)
	upgradeEnd := time.Now()
	t.Logf("meshroll upgrade (%s):\n%s", upgradeEnd.Sub(upgradeStart).Round(100*time.Millisecond), out)
	time.Sleep(quiet)
	end := time.Now()
	l := e.stopClients(t, m)
	sums := report(t, l, start, []phase{{"before", start, upgradeStart}, {"during", upgradeStart, upgradeEnd}, {"after", upgradeEnd, end}})
	e.writeTrafficReport(t, name, l.traffic(fmt.Sprintf("proxyless gRPC clients of %s (%s)", m.clientNS, m.clients.Name)),
		filepath.Join(m.stats, "upgrade-traffic.html"), sums)

	e.assertProxies(t, toRev, m.echoNS, m.clientNS)
	e.assertNoRetries(t, toRev)
	if _, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+fromRev, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("istiod-%s after --prune: %v, want it removed", fromRev, err)
	}
	if sums[1].ok == 0 {
		t.Error("no call was answered during the upgrade")
	}
	return upgradeRun{before: sums[0], during: sums[1], after: sums[2]}, out
}

// prepareUpgrade installs the old revision (and points the default tag at
// it, so the upgrade has a tag to move) unless it runs.
func (e *env) prepareUpgrade(t *testing.T) {
	t.Helper()
	e.install(t, fromVersion)
	if _, err := controlplane.SetTag(t.Context(), controlplane.Clients{Kube: e.kube, Dynamic: e.dyn},
		controlplane.TagOptions{Tag: "default", Revision: fromRev, Version: fromVersion, Overwrite: true, Force: true}); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeLosesNoRequest is the product's promise on a real xDS data
// plane, gated by istiod's own metrics in the real Prometheus: ≥ 500 calls/s from proxyless gRPC clients to proxyless gRPC servers,
// all injected by istiod 1.23.2 and routed by what it pushes, through a full
// `meshroll upgrade --to 1.24.2 --prune` (canary istiod installed, servers then
// clients restarted onto it in waves, the default tag moved, the old istiod
// removed): not one call fails. Servers drain on SIGTERM as a well-behaved
// application does (keep serving while the mesh learns the endpoint is gone).
func TestUpgradeLosesNoRequest(t *testing.T) {
	e := newEnv(t)
	e.prepareUpgrade(t)
	m := e.deployMesh(t, "zero", fromRev, "echo", serverDrain)
	defer e.deleteNamespaces(t, m.echoNS, m.clientNS)
	prom := e.startIstiodPrometheus(t)
	run, out := e.runUpgrade(t, m, "xds-zero", istiodGates(prom)...)
	assertIstiodMetrics(t, prom, out)
	total, calls := 0, 0
	for _, s := range []summary{run.before, run.during, run.after} {
		total += s.fail
		calls += s.ok + s.fail
	}
	if total != 0 {
		t.Errorf("%d of %d calls failed through the upgrade; want 0", total, calls)
	}
	seconds := run.before.seconds + run.during.seconds + run.after.seconds
	if rate := float64(calls) / float64(max(seconds, 1)); rate < 500 {
		t.Errorf("load was %.0f calls/s; the test needs ≥ 500", rate)
	}
}

// TestUpgradeWithoutDrainLosesRequests is the negative control of the same
// harness and the same `meshroll upgrade`: servers that exit at once on
// SIGTERM, while clients still have their endpoints, cut the calls in flight
// and those fail. If this test sees no failure, the harness cannot see
// failures and the zero above means nothing.
//
// The other naive order, the old istiod removed before its clients moved,
// is TestNaiveUpgradeRemovingIstiodFirstLosesRequests.
func TestUpgradeWithoutDrainLosesRequests(t *testing.T) {
	e := newEnv(t)
	e.prepareUpgrade(t)
	m := e.deployMesh(t, "nodrain", fromRev, "echo", noDrain)
	defer e.deleteNamespaces(t, m.echoNS, m.clientNS)
	run, _ := e.runUpgrade(t, m, "xds-nodrain")
	if run.before.fail != 0 {
		t.Errorf("%d calls failed before the upgrade; want 0", run.before.fail)
	}
	if run.during.fail == 0 {
		t.Error("no call failed with servers that do not drain: the harness cannot see failures")
	}
	t.Logf("MEASURE negative control: %d of %d calls failed during the upgrade with servers that do not drain (%v)",
		run.during.fail, run.during.ok+run.during.fail, run.during.codes)
}
