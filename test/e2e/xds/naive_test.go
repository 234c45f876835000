//go:build linux

package xds_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshroll/meshroll/internal/istio"
)

// TestNaiveUpgradeRemovingIstiodFirstLosesRequests is the naive order of an
// upgrade, in the same harness as the zero-failure run: the old istiod is
// removed (as an uninstall or `kubectl delete` does) before its clients
// moved, then the servers move to the new revision. The clients keep the
// last config the old istiod pushed (proxyless gRPC, like Envoy, keeps its
// config when its control plane goes) and never learn the new servers'
// endpoints: once the old servers are gone, their calls fail. The servers
// drain on SIGTERM and roll new pods first (surge 100%, none unavailable),
// as in the zero-failure run, so the failures are the control plane's, and
// every new pod gets an address no pod had before (kwok hands a freed
// address to the next pod; here none is freed before the new pods exist),
// so a stale endpoint never answers by accident.
func TestNaiveUpgradeRemovingIstiodFirstLosesRequests(t *testing.T) {
	e := newEnv(t)
	e.prepareUpgrade(t)
	e.install(t, toVersion)
	m := e.deployMesh(t, "naive", fromRev, "echo", serverDrain)
	defer e.deleteNamespaces(t, m.echoNS, m.clientNS)
	// The old istiod comes back for the tests after this one: its revision's
	// webhooks (the default validator among them) have no endpoint while it
	// is gone, which is this naive order's other harm.
	defer e.install(t, fromVersion)
	oldIPs := e.podIPs(t, m.echoNS)

	start := time.Now()
	time.Sleep(quiet)
	naiveStart := time.Now()
	ctx := context.WithoutCancel(t.Context())
	if err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Delete(ctx, "istiod-"+fromRev, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := e.kube.CoreV1().Pods(istio.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod,istio.io/rev=" + fromRev})
		if err != nil || len(pods.Items) > 0 {
			return false, fmt.Errorf("istiod %s pods left: %v", fromRev, err)
		}
		return true, nil
	})
	relabel := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, istio.LabelRev, toRev)
	if _, err := e.kube.CoreV1().Namespaces().Patch(ctx, m.echoNS, types.MergePatchType, relabel, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	restart := fmt.Appendf(nil, `{"spec":{"strategy":{"rollingUpdate":{"maxSurge":"100%%","maxUnavailable":0}},"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`,
		time.Now().Format(time.RFC3339))
	if _, err := e.kube.AppsV1().Deployments(m.echoNS).Patch(ctx, m.servers.Name, types.MergePatchType, restart, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitAvailable(t, 3*time.Minute, m.servers)
	waitFor(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		if n := len(e.podIPs(t, m.echoNS)); n != serverReplicas {
			return false, fmt.Errorf("%d server pods, want %d (old ones still terminating)", n, serverReplicas)
		}
		return true, nil
	})
	for ip := range e.podIPs(t, m.echoNS) {
		if oldIPs[ip] {
			t.Errorf("a new server pod got %s, the address of an old one: a stale endpoint would still answer", ip)
		}
	}
	time.Sleep(quiet)
	end := time.Now()
	l := e.stopClients(t, m)
	sums := report(t, l, start, []phase{{"before", start, naiveStart}, {"naive", naiveStart, end}})
	if sums[0].fail != 0 {
		t.Errorf("%d calls failed before the naive upgrade; want 0", sums[0].fail)
	}
	if sums[1].fail == 0 {
		t.Error("no call failed with the old istiod removed before its clients moved: the harness cannot see this failure")
	}
	e.assertProxies(t, toRev, m.echoNS)
	t.Logf("MEASURE naive upgrade (old istiod removed first, then servers moved): %d of %d calls failed (%v)",
		sums[1].fail, sums[1].ok+sums[1].fail, sums[1].codes)
	if _, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+fromRev, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("istiod-%s: %v, want it deleted", fromRev, err)
	}
}

// podIPs are the addresses of ns's pods that are not terminating.
func (e *env) podIPs(t *testing.T, ns string) map[string]bool {
	t.Helper()
	pods, err := e.kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			ips[p.Status.PodIP] = true
		}
	}
	return ips
}
